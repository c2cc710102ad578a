// `npm run soak`: a bounded load soak (issue 9). Keeps R runs in flight on D simulated devices
// while M monitor sockets watch them, for a bounded time, then checks that nothing went wrong
// and nothing grew: every run ended as expected (some are paused and resumed, some cancelled),
// PostgreSQL agrees with Temporal, every monitor got every durable event of what it watched
// exactly once and in order, no socket closed unexpectedly, no request failed; the server's
// memory (after forced GCs) and open handles did not grow while the load ran, and its handles
// and history streams came back to their idle level once it stopped. Writes docs/soak.md and
// exits 1 when a check fails.
//
//   node scripts/soak.ts                 50 devices, 200 runs in flight, 1,000 monitors, 3 minutes
//   node scripts/soak.ts --minutes 10    longer (at most 12: the monitors' access tokens live 15)
//   node scripts/soak.ts --smoke         10 devices, 40 runs, 100 monitors, 30 s (a test runs it)
//   --out <path>                         the report (default docs/soak.md)
//
// Same machinery as the bench (scripts/bench/): a Temporal dev server on free ports, a fresh
// database dropped at the end, the system under test in a child process. Loopback only.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type { Orm } from '../src/db/orm.ts';
import { OwnedRepos } from '../src/db/owned.ts';
import { registerDevice } from '../src/domain/devices.ts';
import { TEMPORAL_BIN } from '../src/temporal/dev-server.ts';
import { connectClient } from '../src/temporal/client.ts';
import { encodeFrame, parseServerToMonitor, type MonitorToServer } from '../src/protocol/index.ts';
import { workflowIdForTask, type TaskRunResult } from '../workflows/api.ts';
import { BenchDevice, LiteSocket, Rest, connectDevices, disconnectDevices, linear, openSockets } from './bench/clients.ts';
import { ROOT, machineInfo, median, pool, sleep, until, type MemorySample } from './bench/lib.ts';
import { ServerProcess } from './bench/server-process.ts';
import { arg, readCommandLine } from './lib/cli.ts';
import { prepare, type Cleanup } from './bench/system.ts';

const { options: opts } = readCommandLine({
  name: 'soak',
  usage: `Usage: npm run soak -- [--minutes 3] [--smoke] [--out docs/soak.md]

A bounded load soak: runs in flight on simulated devices while monitors watch them, then checks
that nothing went wrong and nothing grew. Writes the report; exit code 1 when a check fails.`,
  options: {
    minutes: { schema: arg.number(0.5, 12).optional(), placeholder: 'n', help: 'how long the load runs (at most 12: the monitors\' access tokens live 15; default 3, 0.5 with --smoke)' },
    smoke: { schema: arg.flag(), flag: true, help: '10 devices, 40 runs, 100 monitors, 30 s (a test runs it)' },
    out: { schema: arg.text().optional(), placeholder: 'path', help: 'the report (default docs/soak.md)' },
  },
});
const smoke = opts.smoke;
const S = smoke
  ? { devices: 10, inflight: 40, taskMonitors: 90, feedMonitors: 10, seconds: 30, sampleEveryS: 3 }
  : { devices: 50, inflight: 200, taskMonitors: 900, feedMonitors: 100, seconds: 180, sampleEveryS: 10 };
if (opts.minutes !== undefined) S.seconds = opts.minutes * 60;
const outPath = resolve(opts.out ?? resolve(ROOT, 'docs', 'soak.md'));

/** Growth allowed between the first and the last third of the load, after warm-up. */
const HEAP_GROWTH = { ratio: 0.2, bytes: 16 * 1024 * 1024 };
/** Seconds of load before growth is judged (history streams linger 30 s after their run). */
const WARM_UP_S = 45;
/** Handles allowed above the idle level once everything drained. */
const HANDLE_SLACK = 10;

const t0 = Date.now();
const log = (msg: string) => process.stdout.write(`[soak ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);

interface Sample {
  t: number;
  phase: 'idle' | 'load' | 'drained';
  heap: number;
  threadHeap: number;
  rss: number;
  handles: number;
  byType: Record<string, number>;
  streams: number;
  monitors: number;
  devices: number;
}

/** A monitor socket and the durable seqs it got, per task. */
class Monitor {
  readonly sock: LiteSocket;
  readonly seqs = new Map<string, number[]>();
  errors = 0;
  closedUnexpectedly = false;
  private readonly ping: NodeJS.Timeout;

  constructor(sock: LiteSocket, stopping: () => boolean) {
    this.sock = sock;
    sock.onFrame = (text) => {
      const parsed = parseServerToMonitor(text);
      // A frame the codec refuses is a protocol bug, counted with the server's error frames.
      if (!parsed.ok) {
        this.errors++;
        return;
      }
      const f = parsed.frame;
      if (f.type === 'task/event' && f.payload.seq !== undefined) {
        const list = this.seqs.get(f.payload.task_id) ?? [];
        list.push(f.payload.seq);
        this.seqs.set(f.payload.task_id, list);
      } else if (f.type === 'error') {
        this.errors++;
      }
    };
    sock.ws.on('close', () => {
      if (!stopping()) this.closedUnexpectedly = true;
    });
    // Heartbeat: the server closes a silent monitor (CloseCode.HeartbeatMissed).
    this.ping = setInterval(() => this.send({ type: 'ping', payload: {} }), 5000);
  }

  send(msg: MonitorToServer): void {
    if (this.sock.ws.readyState === this.sock.ws.OPEN) this.sock.ws.send(encodeFrame(msg));
  }

  async close(): Promise<void> {
    clearInterval(this.ping);
    await this.sock.close();
  }
}

interface RunRecord {
  taskId: string;
  action: 'none' | 'pause-resume' | 'cancel';
  expected: TaskRunResult['status'];
  got: TaskRunResult['status'] | null;
  mirror: string | null;
  lastSeq: number;
}

const problems: string[] = [];
const problem = (p: string) => {
  if (problems.length < 50) log(`PROBLEM ${p}`);
  problems.push(p);
};

async function main(): Promise<void> {
  log(`${smoke ? 'smoke' : 'soak'}: ${S.devices} devices, ${S.inflight} runs in flight, ${S.taskMonitors + S.feedMonitors} monitors, ${S.seconds} s`);
  const cleanups: Cleanup[] = [];
  const dir = resolve(ROOT, '.data', `soak-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  cleanups.push({ what: 'temp dir', fn: () => rmSync(dir, { recursive: true, force: true }) });
  let stopping = false;
  try {
    const { temporalAddress, databaseUrl, orm, workflowBundle, bareBundle } = await prepare(dir, 'jarvis_soak', cleanups);
    const srv = new ServerProcess({
      temporalAddress, databaseUrl, workflowBundle, bareBundle,
      taskQueue: 'soak-task-runs', bareQueue: 'soak-bare', nodeId: 'soak-node', logLevel: 'warn', dataDir: dir,
      // One soak user does what many users would: up to 1,000 monitor sockets, hundreds of runs
      // in flight, thousands of requests from one IP.
      settings: {
        RATE_LIMIT_IP_PER_MIN: '1000000000', RATE_LIMIT_USER_PER_MIN: '1000000000', RATE_LIMIT_AUTH_PER_MIN: '1000000',
        WS_MAX_MONITORS_PER_USER: '100000', ACCOUNT_MAX_UNFINISHED_RUNS: '1000000', ACCOUNT_MAX_WORKFLOWS: '100000',
        ACCESS_TOKEN_TTL_S: '3600',
      },
    }, resolve(dir, 'server.log'));
    cleanups.push({ what: 'server', fn: () => srv.stop() });
    const ready = await srv.ready;
    const temporal = await connectClient(temporalAddress, 'default');
    cleanups.push({ what: 'Temporal client', fn: () => temporal.connection.close() });
    const wsUrl = `${ready.apiUrl.replace(/^http/, 'ws')}/ws`;
    log(`system up: ${ready.apiUrl}`);

    const rest = new Rest(ready.apiUrl);
    const email = `soak-${Date.now()}@example.com`;
    await rest.ok('POST', '/auth/register', { email, password: 'soak soak soak', name: 'Soak' });
    const login = await rest.ok('POST', '/auth/login', { email, password: 'soak soak soak' });
    rest.token = login.access_token;
    const wfId = (await rest.ok('POST', '/workflows', { name: 'soak: 3 steps', definition: linear(3, 'bench.work', { ms: 40 }) })).workflow.id as string;
    const devices = await registerDevices(orm, login.user.id, S.devices);
    await connectDevices(devices, wsUrl);
    const feed = (await openSockets(S.feedMonitors, () => new LiteSocket(wsUrl, rest.token, true)))
      .map((s) => new Monitor(s, () => stopping));
    for (const m of feed) m.send({ type: 'subscribe', payload: { scope: 'user' } });
    const watchers = (await openSockets(S.taskMonitors, () => new LiteSocket(wsUrl, rest.token, true)))
      .map((s) => new Monitor(s, () => stopping));
    log(`${devices.length} devices and ${feed.length + watchers.length} monitors connected`);

    const samples: Sample[] = [];
    const sample = async (phase: Sample['phase']) => {
      const [m, h, c] = [await srv.call('memory') as MemorySample, await srv.call('handles'), await srv.call('counts')];
      const handles = Object.values(h).reduce((a, b) => a + b, 0);
      samples.push({
        t: (Date.now() - t0) / 1000, phase, heap: m.heapUsed + m.external, threadHeap: m.threadHeap, rss: m.rss,
        handles, byType: h, streams: c.streams, monitors: c.monitors, devices: c.devices,
      });
    };
    await sleep(1000);
    await sample('idle');
    const idle = samples[0];
    log(`idle: heap ${mb(idle.heap)}, ${idle.handles} handles`);

    // ---- the load --------------------------------------------------------------------------
    const runs: RunRecord[] = [];
    const feedFrom = Date.now();
    const deadline = Date.now() + S.seconds * 1000;
    let submitted = 0;
    let nonOk = 0;
    const sampler = (async () => {
      while (Date.now() < deadline) {
        await sleep(S.sampleEveryS * 1000);
        if (Date.now() < deadline) await sample('load');
      }
    })();
    await Promise.all(Array.from({ length: S.inflight }, async (_, slot) => {
      const mine = watchers.filter((_w, i) => i % S.inflight === slot);
      const device = devices[slot % devices.length];
      while (Date.now() < deadline) {
        const n = submitted++;
        const action: RunRecord['action'] = n % 25 === 7 ? 'cancel' : n % 10 === 3 ? 'pause-resume' : 'none';
        const sub = await rest.req('POST', '/tasks', { workflow_id: wfId, device_id: device.id });
        if (sub.status !== 201) {
          nonOk++;
          problem(`POST /tasks: HTTP ${sub.status} ${JSON.stringify(sub.body).slice(0, 200)}`);
          await sleep(500);
          continue;
        }
        const taskId = sub.body.data.task.id as string;
        for (const m of mine) m.send({ type: 'subscribe', payload: { task_id: taskId } });
        const rec: RunRecord = { taskId, action, expected: 'completed', got: null, mirror: null, lastSeq: 0 };
        runs.push(rec);
        if (action !== 'none') await control(rest, rec, () => nonOk++);
        const result = await withTimeout(temporal.workflow.getHandle(workflowIdForTask(taskId)).result() as Promise<TaskRunResult>, 120_000);
        if (!result) {
          problem(`task ${taskId} (${action}) did not end within 120 s`);
          continue;
        }
        rec.got = result.status;
        if (rec.got !== rec.expected) problem(`task ${taskId} (${action}) ended ${rec.got}, expected ${rec.expected}`);
        const row = (await orm.em.fork().getConnection().execute<{ status: string; last_seq: number }[]>(
          'select status, last_seq from tasks where id = ?', [taskId]))[0];
        rec.mirror = row?.status ?? null;
        rec.lastSeq = Number(row?.last_seq ?? 0);
        if (rec.mirror !== rec.got) problem(`task ${taskId}: PostgreSQL says ${rec.mirror}, Temporal ${rec.got}`);
        // Every watcher gets 1..lastSeq, once, in order.
        const want = Array.from({ length: rec.lastSeq }, (_x, i) => i + 1).join(',');
        for (const m of mine) {
          try {
            await until(() => (m.seqs.get(taskId)?.length ?? 0) >= rec.lastSeq || null, 20_000, 'events', 20);
          } catch {
            // compared below
          }
          const got = (m.seqs.get(taskId) ?? []).join(',');
          if (got !== want) problem(`task ${taskId}: a monitor got seqs [${got}], expected [1..${rec.lastSeq}]`);
          m.send({ type: 'unsubscribe', payload: { task_id: taskId } });
          m.seqs.delete(taskId);
        }
      }
    }));
    await sampler;
    const loadS = (Date.now() - feedFrom) / 1000;
    log(`load over: ${runs.length} runs in ${loadS.toFixed(0)} s`);

    // The user-feed monitors saw every task created after they subscribed, completely.
    await sleep(1000);
    let feedChecked = 0;
    for (const m of feed) {
      for (const r of runs) {
        const got = (m.seqs.get(r.taskId) ?? []).join(',');
        const want = Array.from({ length: r.lastSeq }, (_x, i) => i + 1).join(',');
        if (got !== want) problem(`user feed: task ${r.taskId} seqs [${got}], expected [1..${r.lastSeq}]`);
        feedChecked++;
      }
    }

    // ---- drained -----------------------------------------------------------------------------
    // History streams linger a little after their last monitor leaves: wait for them to go.
    try {
      await until(async () => ((await srv.call('counts')).streams === 0) || null, 60_000, 'history streams to close', 500);
    } catch {
      problem(`history streams still open after the load: ${(await srv.call('counts')).streams}`);
    }
    await sleep(2000);
    await sample('drained');
    // Idle pooled connections (PostgreSQL's pool closes them after 10 s idle) count as handles:
    // give them that long before calling a surplus a leak.
    for (let waited = 0; waited < 15 && samples[samples.length - 1].handles > samples[0].handles + HANDLE_SLACK; waited++) {
      await sleep(1000);
      samples.pop();
      await sample('drained');
    }
    const drained = samples[samples.length - 1];
    for (const m of [...feed, ...watchers]) {
      if (m.closedUnexpectedly) problem('a monitor socket closed during the soak');
      if (m.errors) problem(`a monitor got ${m.errors} error frames`);
    }
    if (drained.handles > idle.handles + HANDLE_SLACK) {
      problem(`open handles ${drained.handles} after the load, ${idle.handles} before (${JSON.stringify(drained.byType)} vs ${JSON.stringify(idle.byType)})`);
    }
    // Warm-up: until the history streams of ended runs, kept 30 s for monitors that come back,
    // reach their steady number; growth is judged on the samples after it only.
    const warmS = Math.max(0.2 * loadS, WARM_UP_S);
    const load = samples.filter((s) => s.phase === 'load' && s.t - idle.t >= warmS);
    const judged = load.length >= 3;
    const third = Math.max(1, Math.floor(load.length / 3));
    const early = load.slice(0, third);
    const late = load.slice(-third);
    const heapEarly = median(early.map((s) => s.heap + s.threadHeap));
    const heapLate = median(late.map((s) => s.heap + s.threadHeap));
    const handlesEarly = median(early.map((s) => s.handles));
    const handlesLate = median(late.map((s) => s.handles));
    const heapLimit = heapEarly * (1 + HEAP_GROWTH.ratio) + HEAP_GROWTH.bytes;
    if (judged && heapLate > heapLimit) problem(`memory grew under load: ${mb(heapEarly)} -> ${mb(heapLate)} (limit ${mb(heapLimit)})`);
    if (judged && handlesLate > handlesEarly * 1.2 + HANDLE_SLACK) problem(`handles grew under load: ${handlesEarly} -> ${handlesLate}`);
    stopping = true;
    await Promise.all([...feed, ...watchers].map((m) => m.close()));
    await disconnectDevices(devices);

    const byAction = (a: RunRecord['action']) => runs.filter((r) => r.action === a);
    const report = render({
      machine: machineInfo(TEMPORAL_BIN), loadS, runs, byAction, feedChecked, samples, idle, drained,
      heapEarly, heapLate, heapLimit, handlesEarly, handlesLate, nonOk, judged, warmS,
      events: runs.reduce((a, r) => a + r.lastSeq, 0) * ((S.taskMonitors / S.inflight) + S.feedMonitors),
    });
    mkdirSync(dirname(outPath), { recursive: true });
    writeFileSync(outPath, report);
    log(`wrote ${relative(process.cwd(), outPath)}`);
  } catch (err) {
    problem(`the soak itself failed: ${(err as Error).stack ?? err}`);
  } finally {
    stopping = true;
    for (const c of cleanups.reverse()) {
      try {
        await c.fn();
      } catch (err) {
        log(`cleanup of ${c.what} failed: ${(err as Error).message}`);
      }
    }
  }
  log(problems.length ? `FAILED: ${problems.length} problems` : 'PASSED: every check held');
  process.exit(problems.length ? 1 : 0);
}

/** Pauses and resumes, or cancels, a run shortly after it starts; sets what it should end as. */
async function control(rest: Rest, rec: RunRecord, failed: () => void): Promise<void> {
  await sleep(50 + Math.floor(Math.random() * 250));
  const post = async (what: string) => {
    for (let i = 0; i < 100; i++) {
      const r = await rest.req('POST', `/tasks/${rec.taskId}/${what}`, {});
      if (r.status === 202) return true;
      if (r.status !== 409) {
        failed();
        problem(`POST ${what}: HTTP ${r.status}`);
        return false;
      }
      // 409: not in a state that allows it (yet: the mirror follows the run; or any more: it ended).
      const t = await rest.req('GET', `/tasks/${rec.taskId}`);
      if (['completed', 'failed', 'cancelled'].includes(t.body?.data?.task?.status)) return false;
      await sleep(50);
    }
    problem(`POST ${what}: still 409 after 100 tries`);
    return false;
  };
  if (rec.action === 'cancel') {
    if (await post('cancel')) rec.expected = 'cancelled';
    return;
  }
  if (await post('pause')) {
    await sleep(200);
    await post('resume');
  }
}

async function registerDevices(orm: Orm, userId: string, n: number): Promise<BenchDevice[]> {
  return pool(Array.from({ length: n }, (_, i) => i), 8, async (i) => {
    const { device, token } = await registerDevice(new OwnedRepos(orm.em.fork(), userId), {
      device_id: `soak-${i}`, device_name: `Soak ${i}`, os_type: 'windows',
    }, Number.MAX_SAFE_INTEGER); // fixtures of the harness, not a user's registrations
    return new BenchDevice(device.id, token);
  });
}

/** The promise's value, or null once `ms` passed. */
async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((r) => { timer = setTimeout(() => r(null), ms); });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;

function render(r: {
  machine: ReturnType<typeof machineInfo>; loadS: number; runs: RunRecord[]; byAction: (a: RunRecord['action']) => RunRecord[];
  feedChecked: number; samples: Sample[]; idle: Sample; drained: Sample; heapEarly: number; heapLate: number; heapLimit: number;
  handlesEarly: number; handlesLate: number; nonOk: number; events: number; judged: boolean; warmS: number;
}): string {
  const ok = problems.length === 0;
  const lines = [
    '# Load soak', '',
    'Written by `npm run soak` (scripts/soak.ts); run it again rather than editing this file.', '',
    `**${ok ? 'PASSED' : 'FAILED'}**: ${ok ? 'every check held' : `${problems.length} problems`}.`, '',
    '| | |', '| --- | --- |',
    `| mode | ${smoke ? 'smoke' : 'soak'} |`,
    `| date | ${new Date().toISOString()} |`,
    `| machine | ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB.toFixed(1)} GiB memory, ${r.machine.node} |`,
    `| load | ${S.devices} simulated devices, ${S.inflight} runs in flight, ${S.taskMonitors} task monitors + ${S.feedMonitors} user-feed monitors, ${r.loadS.toFixed(0)} s |`,
    `| runs | ${r.runs.length} (3 steps each): ${r.byAction('none').length} plain, ${r.byAction('pause-resume').length} paused and resumed, ${r.byAction('cancel').length} cancel requests (${r.runs.filter((x) => x.got === 'cancelled').length} ended cancelled, the rest had finished first) |`,
    `| runs/s | ${(r.runs.length / r.loadS).toFixed(2)} |`,
    `| durable events delivered to monitors | about ${Math.round(r.events).toLocaleString('en-US')} |`,
    `| checked | every run's end state against its expected one and PostgreSQL against Temporal; every task monitor's seqs of every run it watched, and ${r.feedChecked.toLocaleString('en-US')} (user-feed monitor, task) pairs, are exactly 1..last_seq |`,
    `| failed requests | ${r.nonOk} |`,
    '', '## Memory and handles of the server process', '',
    'After three forced GCs (heap + external of the main thread, plus the heaps of the workflow threads).', '',
    '| t (s) | phase | heap | workflow threads | RSS | handles | history streams | monitors |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...r.samples.map((s) => `| ${s.t.toFixed(0)} | ${s.phase} | ${mb(s.heap)} | ${mb(s.threadHeap)} | ${mb(s.rss)} | ${s.handles} | ${s.streams} | ${s.monitors} |`),
    '',
    r.judged
      ? `Under load, after ${r.warmS.toFixed(0)} s of warm-up (first third vs last third of the samples, medians): heap + threads ${mb(r.heapEarly)} -> ${mb(r.heapLate)} (allowed up to ${mb(r.heapLimit)}), handles ${r.handlesEarly} -> ${r.handlesLate}.`
      : `Growth under load is not judged: the load was shorter than the ${r.warmS.toFixed(0)} s warm-up plus three samples (the smoke mode); only idle vs drained is.`,
    `Idle before vs drained after: ${r.idle.handles} -> ${r.drained.handles} handles (allowed +${HANDLE_SLACK}), history streams ${r.idle.streams} -> ${r.drained.streams}.`,
    '',
    ...(ok ? [] : ['## Problems', '', ...problems.slice(0, 50).map((p) => `- ${p}`), '']),
  ];
  return `${lines.join('\n')}\n`;
}

await main();
