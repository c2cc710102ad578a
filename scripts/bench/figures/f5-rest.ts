// F5: REST, GET /tasks/:id under load against a bare Koa route doing one query.
import autocannon from 'autocannon';
import { type Bench, oursRun, accounted } from '../harness.ts';
import { connectDevices, disconnectDevices } from '../clients.ts';
import { ratio } from '../lib.ts';
import { cpuMean, cpuText, type CpuSample } from '../cpu.ts';

interface Cannon {
  perS: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
}

export interface F5Result {
  seconds: number;
  connections: number;
  taskId: string;
  ours: Cannon;
  bare: Cannon;
  ratio: number;
  /** CPU ms per 1,000 requests by process group, each side. */
  cpu: { ours: CpuSample; bare: CpuSample };
}

/** autocannon against one URL for `seconds` with `connections` connections. */
export async function cannon(url: string, seconds: number, connections: number, headers: Record<string, string> = {}): Promise<Cannon> {
  const r = await autocannon({ url, connections, duration: seconds, headers, timeout: 10 });
  return {
    perS: r.requests.total / r.duration, p50Ms: r.latency.p50, p99Ms: r.latency.p99,
    requests: r.requests.total, non2xx: r.non2xx, errors: r.errors,
  };
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
  // A finished 3-step run of its own (the F1 shape), whatever ran before: the read's cost grows
  // with the run's steps, so every mode must read the same run shape to compare.
  await connectDevices(ctx.devices.slice(0, 1), ctx.wsUrl);
  const { taskId } = await oursRun(ctx, 0);
  await disconnectDevices(ctx.devices.slice(0, 1));
  const oursUrl = `${ctx.rest.base}/tasks/${taskId}`;
  const bareUrl = `${ctx.bareUrl}/tasks/${taskId}`;
  const auth = { authorization: `Bearer ${ctx.rest.token}` };
  if (ctx.sizes.f5Warmup) {
    await autocannon({ url: oursUrl, connections: ctx.sizes.f5Connections, duration: ctx.sizes.f5Warmup, headers: auth });
    await autocannon({ url: bareUrl, connections: ctx.sizes.f5Connections, duration: ctx.sizes.f5Warmup });
  }
  const seconds = Math.max(2, Math.min(ctx.sizes.f5Seconds, Math.floor(slot() / 2 - ctx.sizes.f5Warmup)));
  if (seconds < ctx.sizes.f5Seconds) ctx.skipped.push(`F5 for ${seconds} s per side instead of ${ctx.sizes.f5Seconds} s`);
  // In rounds, ours and bare taking turns, so that a disturbance from outside (this machine is
  // shared) falls on both rather than on one side.
  const rounds = seconds >= 4 ? 2 : 1;
  const oursRounds: Cannon[] = [];
  const bareRounds: Cannon[] = [];
  const cpu = { ours: [] as CpuSample[], bare: [] as CpuSample[] };
  const measured = async (url: string, headers: Record<string, string>, into: Cannon[], cpuInto: CpuSample[]) => {
    const { result, cpu } = await accounted(ctx, () => cannon(url, seconds / rounds, ctx.sizes.f5Connections, headers), (c) => c.requests / 1000);
    into.push(result);
    cpuInto.push(cpu);
  };
  for (let i = 0; i < rounds; i++) {
    await measured(oursUrl, auth, oursRounds, cpu.ours);
    await measured(bareUrl, {}, bareRounds, cpu.bare);
  }
  const ours = combine(oursRounds);
  const bare = combine(bareRounds);
  if (ours.non2xx || bare.non2xx) ctx.log(`F5: non-2xx answers: ours ${ours.non2xx}, bare ${bare.non2xx}`);
  ctx.log(`F5: ours ${Math.round(ours.perS)} req/s, bare ${Math.round(bare.perS)} req/s: ${ratio(ours.perS, bare.perS).toFixed(2)}x`);
  const perK = { ours: cpuMean(cpu.ours), bare: cpuMean(cpu.bare) };
  ctx.log(`F5 CPU ms per 1,000 requests: ours ${cpuText(perK.ours)}; bare ${cpuText(perK.bare)}`);
  return { seconds, connections: ctx.sizes.f5Connections, taskId, ours, bare, ratio: ratio(ours.perS, bare.perS), cpu: perK };
}
