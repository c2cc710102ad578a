// F5: REST, GET /tasks/:id under load against a bare Koa route doing one query. The requests
// are spread over many users, each with their own login (token, session) and their own finished
// run, the way real traffic pays for token checks and session lookups.
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { hash } from '@node-rs/argon2';
import { OwnedRepos } from '../../../src/db/owned.ts';
import * as usersDb from '../../../src/db/users.ts';
import { registerDevice } from '../../../src/domain/devices.ts';
import { workflowIdForTask, type TaskRunResult } from '../../../workflows/api.ts';
import { type Bench, accounted } from '../harness.ts';
import { BenchDevice, Rest, connectDevices, disconnectDevices, linear } from '../clients.ts';
import { pool, ratio } from '../lib.ts';
import { cpuMean, cpuText, type CpuSample } from '../cpu.ts';

interface Cannon {
  perS: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
}

/** F5's target: ours at least this share of bare's requests/s. */
export const F5_TARGET = 0.8;

/** One of F5's users: its access token and its finished 3-step run. */
export interface F5User {
  token: string;
  taskId: string;
}

export interface F5Result {
  seconds: number;
  connections: number;
  /** Users the requests were spread over, one after the other (each with its own token and run). */
  users: number;
  /** Seconds to set the users up (register, log in, a device, a workflow, one run each; not measured). */
  setupS: number;
  ours: Cannon;
  bare: Cannon;
  ratio: number;
  /** CPU ms per 1,000 requests by process group, each side. */
  cpu: { ours: CpuSample; bare: CpuSample };
}

/**
 * autocannon against `path(user)` for `seconds` with `connections` connections, request i going
 * to user i mod n (`auth`: with that user's token), so that every user's token and session are
 * checked as often as any other's.
 */
export async function cannon(base: string, path: (u: F5User) => string, users: F5User[], seconds: number, connections: number, auth: boolean): Promise<Cannon> {
  let i = 0;
  const rate = Number(process.env.BENCH_F5_RATE) || 0;
  const r = await autocannon({
    url: base, connections, duration: seconds, timeout: 10, ...(rate > 0 ? { overallRate: rate } : {}),
    requests: [{
      method: 'GET',
      setupRequest: (req) => {
        const u = users[i++ % users.length];
        return { ...req, path: path(u), headers: auth ? { ...req.headers, authorization: `Bearer ${u.token}` } : req.headers };
      },
    }],
  });
  return {
    perS: r.requests.total / r.duration, p50Ms: r.latency.p50, p99Ms: r.latency.p99,
    requests: r.requests.total, non2xx: r.non2xx, errors: r.errors,
  };
}

/**
 * `n` users, each logged in through the API (its own token and session), with a workflow of 3
 * echo steps and a device (registered as POST /users/devices does) that runs the user's one run
 * to its end. The accounts are fixtures: inserted with one password hash made once (argon2 is
 * slow on purpose; registering through the API would hash once more per user for nothing).
 */
export async function f5Users(ctx: Bench, n: number): Promise<F5User[]> {
  const start = performance.now();
  const stamp = Date.now();
  const password = 'bench bench bench';
  const passwordHash = await hash(password);
  const users = await pool(Array.from({ length: n }, (_, i) => i), 8, async (i) => {
    const rest = new Rest(ctx.rest.base.replace(/\/api\/v1$/, ''));
    const email = `bench-f5-${stamp}-${i}@example.com`;
    await usersDb.insert(ctx.orm.em.fork(), { id: crypto.randomUUID(), email, passwordHash, name: `Bench F5 ${i}` });
    const login = await rest.ok('POST', '/auth/login', { email, password });
    rest.token = login.access_token;
    const workflowId = (await rest.ok('POST', '/workflows', { name: 'bench: 3 echo steps', definition: linear(3, 'bench.echo', { text: 'x' }) })).workflow.id as string;
    const { device, token } = await registerDevice(new OwnedRepos(ctx.orm.em.fork(), login.user.id), {
      device_id: `bench-f5-${i}`, device_name: `Bench F5 ${i}`, os_type: 'windows',
    }, Number.MAX_SAFE_INTEGER);
    return { rest, workflowId, device: new BenchDevice(device.id, token) };
  });
  const loggedIn = performance.now();
  await connectDevices(users.map((u) => u.device), ctx.wsUrl);
  try {
    return await pool(users, n, async (u) => {
      const task = (await u.rest.ok('POST', '/tasks', { workflow_id: u.workflowId, device_id: u.device.id })).task;
      const result = await ctx.temporal.workflow.getHandle(workflowIdForTask(task.id)).result() as TaskRunResult;
      if (result.status !== 'completed') throw new Error(`F5 run ${task.id} ended ${result.status}`);
      return { token: u.rest.token, taskId: task.id as string };
    });
  } finally {
    ctx.log(`F5: ${n} users logged in in ${((loggedIn - start) / 1000).toFixed(1)} s, their runs done in ${((performance.now() - loggedIn) / 1000).toFixed(1)} s`);
    await disconnectDevices(users.map((u) => u.device));
  }
}

function combine(rounds: Cannon[]): Cannon {
  const requests = rounds.reduce((a, r) => a + r.requests, 0);
  return {
    perS: rounds.reduce((a, r) => a + r.perS, 0) / rounds.length,
    p50Ms: rounds.reduce((a, r) => a + r.p50Ms * r.requests, 0) / Math.max(1, requests),
    p99Ms: Math.max(...rounds.map((r) => r.p99Ms)),
    requests,
    non2xx: rounds.reduce((a, r) => a + r.non2xx, 0),
    errors: rounds.reduce((a, r) => a + r.errors, 0),
  };
}

export async function f5Rest(ctx: Bench, slot: () => number): Promise<F5Result> {
  // Finished 3-step runs of their own (the F1 shape), whatever ran before: the read's cost grows
  // with the run's steps, so every mode must read the same run shape to compare.
  const setupStart = performance.now();
  const users = await f5Users(ctx, ctx.sizes.f5Users);
  ctx.f5Users = users;
  const setupS = (performance.now() - setupStart) / 1000;
  ctx.log(`F5: ${users.length} users with a finished run each, ${setupS.toFixed(1)} s`);
  const ours = (seconds: number) => cannon(ctx.rest.base, (u) => `/api/v1/tasks/${u.taskId}`, users, seconds, ctx.sizes.f5Connections, true);
  const bare = (seconds: number) => cannon(ctx.bareUrl, (u) => `/tasks/${u.taskId}`, users, seconds, ctx.sizes.f5Connections, false);
  if (ctx.sizes.f5Warmup) {
    await ours(ctx.sizes.f5Warmup);
    await bare(ctx.sizes.f5Warmup);
  }
  const seconds = Math.max(2, Math.min(ctx.sizes.f5Seconds, Math.floor(slot() / 2 - ctx.sizes.f5Warmup)));
  if (seconds < ctx.sizes.f5Seconds) ctx.skipped.push(`F5 for ${seconds} s per side instead of ${ctx.sizes.f5Seconds} s`);
  // In rounds, ours and bare taking turns, so that a disturbance from outside (this machine is
  // shared) falls on both rather than on one side.
  const rounds = seconds >= 4 ? 2 : 1;
  const oursRounds: Cannon[] = [];
  const bareRounds: Cannon[] = [];
  const cpu = { ours: [] as CpuSample[], bare: [] as CpuSample[] };
  const measured = async (run: (s: number) => Promise<Cannon>, into: Cannon[], cpuInto: CpuSample[]) => {
    const { result, cpu } = await accounted(ctx, () => run(seconds / rounds), (c) => c.requests / 1000);
    into.push(result);
    cpuInto.push(cpu);
  };
  for (let i = 0; i < rounds; i++) {
    await measured(ours, oursRounds, cpu.ours);
    await measured(bare, bareRounds, cpu.bare);
  }
  const o = combine(oursRounds);
  const b = combine(bareRounds);
  if (o.non2xx || b.non2xx) ctx.log(`F5: non-2xx answers: ours ${o.non2xx}, bare ${b.non2xx}`);
  ctx.log(`F5: ours ${Math.round(o.perS)} req/s, bare ${Math.round(b.perS)} req/s: ${ratio(o.perS, b.perS).toFixed(2)}x`);
  const perK = { ours: cpuMean(cpu.ours), bare: cpuMean(cpu.bare) };
  ctx.log(`F5 CPU ms per 1,000 requests: ours ${cpuText(perK.ours)}; bare ${cpuText(perK.bare)}`);
  return {
    seconds, connections: ctx.sizes.f5Connections, users: users.length, setupS,
    ours: o, bare: b, ratio: ratio(o.perS, b.perS), cpu: perK,
  };
}
