// `npm run bench`: measures the orchestrator against bare baselines in the same run, on the same
// Temporal dev server and PostgreSQL, and writes docs/benchmarks.md. Starts everything it needs
// (a Temporal dev server on free ports, a fresh database jarvis_bench_<ts> that it drops at the
// end, the system under test in a child process: scripts/bench/server.ts) and stops it again.
//
//   node scripts/bench/run.ts            full run (under 10 minutes, profiles of what missed)
//   node scripts/bench/run.ts --quick    smaller sizes (under 2 minutes; on a busy machine the
//                                        time budget leaves growth points out and says so)
//   node scripts/bench/run.ts --smoke    tiny sizes, one data point each (seconds): a test that it runs
//   --out <path>       write the report there instead of docs/benchmarks.md
//   --profile / --no-profile   CPU profiles of the server for the figures that missed their target
//                               (default on in the full run only)
//   --log-level <lvl>  the server's log level (default warn)
//   --only F1,F5       measure only these figures
//   BENCH_PROFILE_DIR=<dir>       also write the raw profiles of the figures that missed
//   BENCH_SERVER_NODE_ARGS=<flags> extra Node flags for the server process: `--cpu-prof
//                        --cpu-prof-dir=<dir>` profiles every thread (the workflow threads too)
//
// Loopback only (127.0.0.1); every request loop is bounded in count and in time.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import type { Client } from '@temporalio/client';
import type { Orm } from '../../src/db/orm.ts';
import { OwnedRepos } from '../../src/db/owned.ts';
import { registerDevice } from '../../src/domain/devices.ts';
import { TEMPORAL_BIN } from '../../src/temporal/dev-server.ts';
import { connectClient } from '../../src/temporal/client.ts';
import { workflowIdForTask, type TaskRunResult } from '../../workflows/api.ts';
import type { bareParkedWorkflow, bareStepsWorkflow, bareControlWorkflow } from './bare-workflows.ts';
import { BenchDevice, LiteSocket, Rest, connectDevices, disconnectDevices, linear, openSockets } from './clients.ts';
import { historyBreakdown, type HistoryBreakdown } from './history.ts';
import { cpuMean, cpuPer, cpuSample, cpuText, type CpuSample } from './cpu.ts';
import {
  ROOT, machineInfo, median, percentile, pool, ratio, sleep, until,
  type MachineInfo, type MemorySample, type ProfileSummary, type ServerSetup,
} from './lib.ts';
import { renderReport, type Results } from './report.ts';
import { prepare } from './system.ts';
import { ServerProcess } from './server-process.ts';

// ---- options ----------------------------------------------------------------------------------

type Mode = 'smoke' | 'quick' | 'full';

interface Sizes {
  /** F1 concurrency levels; the last one is the headline figure. */
  f1Levels: number[];
  /** Runs per level at most (each side), and seconds per level at most (each side). */
  f1Runs: (c: number) => number;
  /** F2: runs of each shape (1 step and f2Steps steps, ours and bare) at concurrency 1. */
  f2Runs: number;
  f2Steps: number;
  f1MaxS: number;
  warmupRuns: number;
  /** F3 pause/resume cycles. */
  f3Reps: number;
  /** F4 monitor counts; the last one is the headline figure. */
  f4Monitors: number[];
  /** F4 bursts per side and level (the median is the figure). */
  f4Bursts: number;
  f4Steps: number;
  /** F5 seconds per side (plus a short warm-up). */
  f5Seconds: number;
  /** Seconds per side before measuring. */
  f5Warmup: number;
  f5Connections: number;
  /** F6 idle device sockets and parked runs. */
  f6Sockets: number;
  f6Runs: number;
  /** Seconds of a profiled repeat of a figure that missed its target. */
  profileS: number;
  /** Hard limit of the whole run. */
  limitS: number;
}

const SIZES: Record<Mode, Sizes> = {
  smoke: {
    f1Levels: [1], f1Runs: () => 3, f1MaxS: 10, f2Runs: 2, f2Steps: 3, warmupRuns: 1, f3Reps: 3, f4Monitors: [5], f4Bursts: 1, f4Steps: 3,
    f5Seconds: 1, f5Warmup: 0, f5Connections: 5, f6Sockets: 10, f6Runs: 3, profileS: 0, limitS: 170,
  },
  quick: {
    f1Levels: [1, 10, 50], f1Runs: (c) => (c === 1 ? 6 : c * 3), f1MaxS: 2.5, f2Runs: 5, f2Steps: 8, warmupRuns: 1, f3Reps: 50,
    f4Monitors: [10, 100, 200], f4Bursts: 3, f4Steps: 10, f5Seconds: 5, f5Warmup: 1, f5Connections: 20,
    f6Sockets: 200, f6Runs: 8, profileS: 2, limitS: 115,
  },
  full: {
    f1Levels: [1, 10, 50, 200], f1Runs: (c) => (c === 1 ? 30 : c * 8), f1MaxS: 25, f2Runs: 15, f2Steps: 10, warmupRuns: 5, f3Reps: 200,
    f4Monitors: [10, 100, 1000], f4Bursts: 5, f4Steps: 10, f5Seconds: 10, f5Warmup: 2, f5Connections: 20,
    f6Sockets: 500, f6Runs: 200, profileS: 4, limitS: 590,
  },
};

const argv = process.argv.slice(2);
const argValue = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(readFileSync(import.meta.filename, 'utf8').split('\n').filter((l) => l.startsWith('//')).slice(0, 16)
    .map((l) => l.slice(3)).join('\n') + '\n');
  process.exit(0);
}
const mode: Mode = argv.includes('--smoke') ? 'smoke' : argv.includes('--quick') ? 'quick' : 'full';
const S = SIZES[mode];
const outPath = resolve(argValue('--out') ?? resolve(ROOT, 'docs', 'benchmarks.md'));
// Profiles take time the quick mode does not have: on by default only in the full run.
const profiling = argv.includes('--no-profile') ? false : argv.includes('--profile') ? true : mode === 'full';
const logLevel = argValue('--log-level') ?? 'warn';
const FIGURES = ['F1', 'F2', 'F3', 'F4', 'F5', 'F6'] as const;
const onlyArg = argValue('--only')?.toUpperCase().split(',').map((x) => x.trim()).filter(Boolean);
if (onlyArg?.some((x) => !(FIGURES as readonly string[]).includes(x))) {
  process.stderr.write(`--only takes figures among ${FIGURES.join(',')}\n`);
  process.exit(2);
}
const wanted = (fig: (typeof FIGURES)[number]) => !onlyArg || onlyArg.includes(fig);

const t0 = Date.now();
/** Seconds left before the phases must be done (clean-up and the report need the rest). */
const left = () => S.limitS - 14 - (Date.now() - t0) / 1000;
const skipped: string[] = [];
/** Shares of the time left that each phase may use (what one leaves goes to the next ones). */
const WEIGHTS = { F6: 0.2, F1: 0.24, F2: 0.08, F3: 0.1, F4: 0.14, F5: 0.14, profiles: 0.1 };
type Phase = keyof typeof WEIGHTS;
const phasesLeft = new Set<Phase>(Object.keys(WEIGHTS) as Phase[]);
/** Starts a phase: returns a function giving the seconds left in its slice. */
function slice(phase: Phase): () => number {
  const total = [...phasesLeft].reduce((a, p) => a + WEIGHTS[p], 0);
  const seconds = Math.max(0, left()) * (WEIGHTS[phase] / total);
  phasesLeft.delete(phase);
  const end = Date.now() + seconds * 1000;
  return () => (end - Date.now()) / 1000;
}
const log = (msg: string) => process.stdout.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`);

// ---- clean-up and the time limit --------------------------------------------------------------

const cleanups: { what: string; fn: () => Promise<void> | void }[] = [];
let cleaning: Promise<void> | null = null;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const c = cleanups.pop()!;
      try {
        await Promise.race([c.fn(), sleep(20_000).then(() => { throw new Error('took over 20 s'); })]);
      } catch (err) {
        log(`clean-up "${c.what}" failed: ${(err as Error).message}`);
      }
    }
  })();
  return cleaning;
}
const watchdog = setTimeout(() => {
  log(`the run exceeded its limit of ${S.limitS} s: stopping`);
  void cleanup().finally(() => process.exit(1));
}, (S.limitS - 3) * 1000);
watchdog.unref();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---- the run ----------------------------------------------------------------------------------

interface Ctx {
  srv: ServerProcess;
  rest: Rest;
  temporal: Client;
  wsUrl: string;
  bareUrl: string;
  bareQueue: string;
  devices: BenchDevice[];
  wf: { three: string; fanout: string; hold: string; one: string; long: string };
  /** Processes whose CPU time F1 accounts for. */
  pids: { temporal: number; server: number };
  orm: Orm;
  /** Whether the PostgreSQL server vacuums by itself (`autovacuum`). */
  autovacuum: boolean;
}

async function main(): Promise<void> {
  log(`mode ${mode}; report -> ${relative(process.cwd(), outPath) || outPath}`);
  const machine: MachineInfo = machineInfo(TEMPORAL_BIN);
  const dir = resolve(ROOT, '.data', `bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  cleanups.push({ what: 'temp dir', fn: () => rmSync(dir, { recursive: true, force: true }) });

  // A Temporal dev server, a fresh database (dropped at the end, after the server process is
  // gone) and both workflow bundles.
  const { temporalAddress, temporalPid, databaseUrl, databaseName, orm, workflowBundle, bareBundle } = await prepare(dir, 'jarvis_bench', cleanups);
  const setting = async (name: string) => String((await orm.em.fork().getConnection().execute(`show ${name}`))[0]?.[name] ?? '?');
  const autovacuum = (await setting('autovacuum')) === 'on';
  const pgVersion = `${await setting('server_version')}${autovacuum ? '' : ', autovacuum off'}`;
  log(`Temporal dev server at ${temporalAddress}; database ${databaseName} (PostgreSQL ${pgVersion})`);
  log('workflow bundles built');

  const setup: ServerSetup = {
    temporalAddress, databaseUrl, workflowBundle, bareBundle,
    taskQueue: 'bench-task-runs', bareQueue: 'bench-bare', nodeId: 'bench-node', logLevel, dataDir: dir,
  };
  const srv = new ServerProcess(setup, resolve(dir, 'server.log'));
  cleanups.push({ what: 'bench server', fn: () => srv.stop() });
  const ready = await srv.ready;
  const temporal = await connectClient(temporalAddress, 'default');
  cleanups.push({ what: 'Temporal client', fn: () => temporal.connection.close() });
  log(`server up: API ${ready.apiUrl}, bare ${ready.bareUrl}`);

  // A user, the workflows, the devices.
  const rest = new Rest(ready.apiUrl);
  const email = `bench-${Date.now()}@example.com`;
  const password = 'bench bench bench';
  await rest.ok('POST', '/auth/register', { email, password, name: 'Bench' });
  const login = await rest.ok('POST', '/auth/login', { email, password });
  rest.token = login.access_token;
  const wfId = async (name: string, def: unknown) => (await rest.ok('POST', '/workflows', { name, definition: def })).workflow.id as string;
  const wf = {
    three: await wfId('bench: 3 echo steps', linear(3, 'bench.echo', { text: 'x' })),
    fanout: await wfId(`bench: ${S.f4Steps} echo steps`, linear(S.f4Steps, 'bench.echo', { text: 'x' })),
    hold: await wfId('bench: one held step', linear(1, 'bench.hold')),
    one: await wfId('bench: 1 echo step', linear(1, 'bench.echo', { text: 'x' })),
    long: await wfId(`bench: ${S.f2Steps} echo steps`, linear(S.f2Steps, 'bench.echo', { text: 'x' })),
  };
  const nDevices = Math.max(...S.f1Levels, S.f6Sockets, S.f6Runs, 1);
  const devices = await registerDevices(orm, login.user.id, nDevices);
  log(`${devices.length} devices registered`);

  const ctx: Ctx = {
    srv, rest, temporal, wsUrl: `${ready.apiUrl.replace(/^http/, 'ws')}/ws`, bareUrl: ready.bareUrl,
    bareQueue: setup.bareQueue, devices, wf, pids: { temporal: temporalPid, server: srv.child.pid ?? 0 }, orm, autovacuum,
  };

  // Warm-up: JIT, the workflow bundles in the workers' isolates, connection pools.
  await connectDevices(devices.slice(0, 1), ctx.wsUrl);
  for (let i = 0; i < S.warmupRuns; i++) {
    await oursRun(ctx, 0);
    await bareRun(ctx);
  }
  await disconnectDevices(devices.slice(0, 1));
  log('warmed up');

  const results: Results = {
    mode, machine, pgVersion, date: new Date().toISOString(), command: commandLine(), sizes: S,
    f1: [], f2: null, f3: null, f4: [], f5: null, f6: null, profiles: [], f5Layers: [], skipped: [], durationS: 0,
  };
  log(`${Math.round(left())} s left for the figures`);
  for (const p of Object.keys(WEIGHTS) as Phase[]) {
    if (p === 'profiles' ? !(profiling && S.profileS > 0) : !wanted(p)) phasesLeft.delete(p);
  }
  if (wanted('F6')) results.f6 = await f6Memory(ctx);
  if (wanted('F1')) results.f1 = await f1Throughput(ctx, slice('F1'));
  if (wanted('F2')) results.f2 = await f2PerStep(ctx, slice('F2'));
  if (wanted('F3')) results.f3 = await f3Control(ctx, slice('F3'));
  if (wanted('F4')) results.f4 = await f4FanOut(ctx, slice('F4'));
  if (wanted('F5')) {
    await vacuumed(ctx, 'F5');
    await quiet(ctx, 'F5');
    results.f5 = await f5Rest(ctx, slice('F5'));
  }
  if (profiling && S.profileS > 0) results.profiles = await profiles(ctx, results, slice('profiles'));
  results.skipped = skipped;
  results.durationS = (Date.now() - t0) / 1000;

  const previous = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, renderReport(results, previous));
  log(`wrote ${relative(process.cwd(), outPath) || outPath}`);
}

/** Devices of the bench user, registered the way POST /users/devices does (fixtures, not measured). */
async function registerDevices(orm: Orm, userId: string, n: number): Promise<BenchDevice[]> {
  return pool(Array.from({ length: n }, (_, i) => i), 8, async (i) => {
    const { device, token } = await registerDevice(new OwnedRepos(orm.em.fork(), userId), {
      device_id: `bench-${i}`, device_name: `Bench ${i}`, os_type: 'windows',
    });
    return new BenchDevice(device.id, token);
  });
}

function commandLine(): string {
  const flags = argv.filter((a, i) => a !== '--out' && argv[i - 1] !== '--out');
  return `npm run bench${flags.length ? ` -- ${flags.join(' ')}` : ''}`;
}

// ---- one run of each kind ---------------------------------------------------------------------

let lastOursTask = '';

/** One 3-step run of ours on device `lane`, from POST /tasks to its result; ms. */
async function oursRun(ctx: Ctx, lane: number, workflowId = ctx.wf.three): Promise<{ ms: number; taskId: string }> {
  const start = performance.now();
  const task = (await ctx.rest.ok('POST', '/tasks', { workflow_id: workflowId, device_id: ctx.devices[lane].id })).task;
  const result = await ctx.temporal.workflow.getHandle(workflowIdForTask(task.id)).result() as TaskRunResult;
  if (result.status !== 'completed') throw new Error(`run ${task.id} ended ${result.status}: ${JSON.stringify(result.error)}`);
  lastOursTask = task.id;
  return { ms: performance.now() - start, taskId: task.id };
}

let bareSeq = 0;
/** One bare workflow of `steps` trivial activities, from start to its result; ms. */
async function bareRun(ctx: Ctx, steps = 3): Promise<{ ms: number; workflowId: string }> {
  const start = performance.now();
  const workflowId = `bare-steps-${process.pid}-${++bareSeq}`;
  await ctx.temporal.workflow.execute<typeof bareStepsWorkflow>('bareStepsWorkflow', {
    taskQueue: ctx.bareQueue, workflowId, args: [steps],
  });
  return { ms: performance.now() - start, workflowId };
}

interface LoopResult {
  runs: number;
  seconds: number;
  perS: number;
  p50Ms: number;
  p99Ms: number;
  durations: number[];
  ids: string[];
}

/** `concurrency` lanes each starting one run after the other, bounded in runs and in time. */
async function closedLoop(concurrency: number, maxRuns: number, maxS: number, one: (lane: number) => Promise<{ ms: number; id: string }>, minRuns = 0): Promise<LoopResult> {
  const durations: number[] = [];
  const ids: string[] = [];
  let started = 0;
  const begin = performance.now();
  const deadline = begin + maxS * 1000;
  let end = begin;
  await Promise.all(Array.from({ length: concurrency }, async (_, lane) => {
    while (started < maxRuns && (started < minRuns || performance.now() < deadline)) {
      started++;
      const r = await one(lane);
      durations.push(r.ms);
      ids.push(r.id);
      end = performance.now();
    }
  }));
  const seconds = (end - begin) / 1000;
  return {
    runs: durations.length, seconds, perS: durations.length / seconds,
    p50Ms: median(durations), p99Ms: percentile(durations, 99), durations, ids,
  };
}

/**
 * Waits (20 s at most) until the work left by the figures before has drained: the Temporal dev
 * server, PostgreSQL (autovacuum of the tables F1 filled) and the server process together under
 * a fifth of a core over a second. A figure measured in the middle of that work measured it too,
 * unevenly between its sides (F5 read 0.43x there and 0.71x half a minute later, same code).
 */
async function quiet(ctx: Ctx, figure: string): Promise<void> {
  const start = performance.now();
  for (;;) {
    const a = cpuSample(ctx.pids);
    await sleep(1000);
    const b = cpuSample(ctx.pids);
    const busyMs = b.temporal - a.temporal + b.postgres - a.postgres + b.server - a.server;
    const waited = (performance.now() - start) / 1000;
    if (busyMs < 200 || waited >= 20) {
      log(`${figure}: the system was quiet after ${waited.toFixed(0)} s (${busyMs} ms CPU in the last second)`);
      return;
    }
  }
}

/**
 * A PostgreSQL server without autovacuum (this machine's runs so; PostgreSQL's default and any
 * production setup have it on: docs/operations.md) keeps every row version the figures before
 * left behind (F1 alone: four updates of each task row, two of each step row), and every later
 * read of those rows steps over them. Before the read-only figure, the bench vacuums once, as
 * autovacuum would have by then; ours and bare read the same row, but only ours reads its steps.
 */
async function vacuumed(ctx: Ctx, figure: string): Promise<void> {
  if (ctx.autovacuum) return;
  const start = performance.now();
  await ctx.orm.em.fork().getConnection().execute('vacuum (analyze) tasks, task_steps, task_events');
  log(`${figure}: vacuumed the tables the figures before wrote (no autovacuum here), ${Math.round(performance.now() - start)} ms`);
}

// ---- F1: throughput ---------------------------------------------------------------------------

export interface F1Level {
  concurrency: number;
  ours: LoopResult;
  bare: LoopResult;
  ratio: number;
  /** CPU ms per run by process group, each side (scripts/bench/cpu.ts). */
  cpu: { ours: CpuSample; bare: CpuSample };
}

/** Some work with the CPU each process group spent on it, per unit of the work's result. */
async function accounted<T>(ctx: Ctx, work: () => Promise<T>, units: (r: T) => number): Promise<{ result: T; cpu: CpuSample }> {
  const before = cpuSample(ctx.pids);
  const result = await work();
  return { result, cpu: cpuPer(before, cpuSample(ctx.pids), units(result)) };
}

async function f1Throughput(ctx: Ctx, slot: () => number): Promise<F1Level[]> {
  const max = Math.max(...S.f1Levels);
  await connectDevices(ctx.devices.slice(0, max), ctx.wsUrl);
  const out: F1Level[] = [];
  for (const [i, c] of S.f1Levels.entries()) {
    const n = S.f1Runs(c);
    // The first level always runs; a later one only while the slice has room
    // for a round of `c` runs, judged by the last level's run time.
    const prev = out[out.length - 1];
    // From one run at a time, latency grows slower than concurrency; past that the system is
    // saturated and a round of `c` runs takes about c / (the last level's runs per second).
    const roundS = !prev ? 0 : prev.concurrency === 1
      ? ((prev.ours.p50Ms + prev.bare.p50Ms) * Math.sqrt(c)) / 1000
      : c / prev.ours.perS + c / prev.bare.perS;
    if (i > 0 && slot() < Math.max(6, roundS + 2)) {
      skipped.push(`F1 at ${c} concurrent runs`);
      continue;
    }
    const minRuns = i === 0 ? Math.min(n, 4) : 0;
    const perRun = (r: LoopResult) => r.runs;
    const o = await accounted(ctx, () => closedLoop(c, n, S.f1MaxS, async (lane) => {
      const r = await oursRun(ctx, lane);
      return { ms: r.ms, id: r.taskId };
    }, minRuns), perRun);
    const b = await accounted(ctx, () => closedLoop(c, n, S.f1MaxS, async () => {
      const r = await bareRun(ctx);
      return { ms: r.ms, id: r.workflowId };
    }, minRuns), perRun);
    const [ours, bare] = [o.result, b.result];
    out.push({ concurrency: c, ours, bare, ratio: ratio(ours.perS, bare.perS), cpu: { ours: o.cpu, bare: b.cpu } });
    log(`F1 c=${c}: ours ${ours.perS.toFixed(2)} runs/s (${ours.runs}), bare ${bare.perS.toFixed(2)} runs/s (${bare.runs}): ${ratio(ours.perS, bare.perS).toFixed(2)}x`);
    log(`F1 c=${c} CPU ms per run: ours ${cpuText(o.cpu)}; bare ${cpuText(b.cpu)}`);
  }
  await disconnectDevices(ctx.devices.slice(0, max));
  return out;
}

// ---- F2: per-step overhead --------------------------------------------------------------------

/** Medians of one shape of run, ms. */
export interface F2Side {
  oneMs: number;
  longMs: number;
  /** (long - one) / (steps - 1): what one more step costs, without the run's fixed cost. */
  perStepMs: number;
}

export interface F2Result {
  steps: number;
  runs: number;
  ours: F2Side;
  bare: F2Side;
  /** ours.perStepMs - bare.perStepMs: the figure. */
  addedPerStepMs: number;
  /** ours.oneMs - bare.oneMs: what a run costs beyond its steps (lane, mirror, submission). */
  addedPerRunMs: number;
  ratio: number;
  /** The median long run, read from its history. */
  oursHistory: HistoryBreakdown | null;
  bareHistory: HistoryBreakdown | null;
  /** Client-observed duration minus the workflow's own (history) duration: submit and result. */
  oursOutsideMs: number;
  bareOutsideMs: number;
}

/**
 * The slope of run time over steps at concurrency 1: runs of 1 and of `f2Steps` steps, ours and
 * bare interleaved so drift on a shared machine hits both. A run's fixed cost (the lane, the
 * submission, the last mirror write) cancels out of the slope and is reported on its own.
 */
async function f2PerStep(ctx: Ctx, slot: () => number): Promise<F2Result> {
  await connectDevices(ctx.devices.slice(0, 1), ctx.wsUrl);
  const o = { one: [] as number[], long: [] as number[], longIds: [] as string[] };
  const b = { one: [] as number[], long: [] as number[], longIds: [] as string[] };
  for (let i = 0; i < S.f2Runs && (i < 2 || slot() > 0); i++) {
    o.one.push((await oursRun(ctx, 0, ctx.wf.one)).ms);
    b.one.push((await bareRun(ctx, 1)).ms);
    const ol = await oursRun(ctx, 0, ctx.wf.long);
    o.long.push(ol.ms);
    o.longIds.push(ol.taskId);
    const bl = await bareRun(ctx, S.f2Steps);
    b.long.push(bl.ms);
    b.longIds.push(bl.workflowId);
  }
  await disconnectDevices(ctx.devices.slice(0, 1));
  const runs = o.one.length;
  if (runs < S.f2Runs) skipped.push(`F2 rounds ${runs + 1} to ${S.f2Runs}`);
  const side = (one: number[], long: number[]): F2Side => {
    const oneMs = median(one);
    const longMs = median(long);
    return { oneMs, longMs, perStepMs: (longMs - oneMs) / (S.f2Steps - 1) };
  };
  const ours = side(o.one, o.long);
  const bare = side(b.one, b.long);
  const read = async (workflowId: string, stepType: string) => {
    try {
      const h = await ctx.temporal.workflow.getHandle(workflowId).fetchHistory();
      return historyBreakdown(h.events ?? [], stepType);
    } catch {
      return null;
    }
  };
  const medianId = (ms: number[], ids: string[]) => ids[ms.indexOf(median(ms))] ?? ids[0];
  const oursHistory = await read(workflowIdForTask(medianId(o.long, o.longIds)), 'dispatchStep');
  const bareHistory = await read(medianId(b.long, b.longIds), 'echo');
  const res: F2Result = {
    steps: S.f2Steps, runs, ours, bare,
    addedPerStepMs: ours.perStepMs - bare.perStepMs,
    addedPerRunMs: ours.oneMs - bare.oneMs,
    ratio: ratio(ours.perStepMs, bare.perStepMs),
    oursHistory, bareHistory,
    oursOutsideMs: oursHistory ? ours.longMs - oursHistory.durationMs : NaN,
    bareOutsideMs: bareHistory ? bare.longMs - bareHistory.durationMs : NaN,
  };
  log(`F2: per step ours ${ours.perStepMs.toFixed(1)} ms, bare ${bare.perStepMs.toFixed(1)} ms: +${res.addedPerStepMs.toFixed(1)} ms/step; per run +${res.addedPerRunMs.toFixed(1)} ms`);
  return res;
}

// ---- F3: control latency ----------------------------------------------------------------------

export interface F3Result {
  reps: number;
  pause: number[];
  resume: number[];
  bare: number[];
  conflicts: number;
}

async function f3Control(ctx: Ctx, slot: () => number): Promise<F3Result> {
  const dev = ctx.devices[0];
  await connectDevices([dev], ctx.wsUrl);
  const dispatched = dev.next((e) => e.type === 'dispatch', 30_000, 'the held step');
  const task = (await ctx.rest.ok('POST', '/tasks', { workflow_id: ctx.wf.hold, device_id: dev.id })).task;
  await dispatched.promise;
  const key = `${task.id}:s1:1`;
  const pause: number[] = [];
  const resume: number[] = [];
  let conflicts = 0;
  const control = async (action: 'pause' | 'resume'): Promise<number> => {
    for (let attempt = 0; attempt < 400; attempt++) {
      const seen = dev.next((e) => e.type === 'control' && e.action === action && e.key === key, 10_000, `step/${action}`);
      const start = performance.now();
      const r = await ctx.rest.req('POST', `/tasks/${task.id}/${action}`, {});
      if (r.status === 202) return (await seen.promise) - start;
      seen.cancel();
      // The mirror has not caught up with the previous action yet: try again.
      if (r.status !== 409) throw new Error(`${action}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      conflicts++;
      await sleep(5);
    }
    throw new Error(`${action}: still 409 after 400 attempts`);
  };
  // Ours gets 3/4 of the slice (bare repeats as many cycles, faster); at least 5 cycles.
  const oursEnd = Date.now() + slot() * 750;
  for (let i = 0; i < S.f3Reps && (i < 5 || Date.now() < oursEnd); i++) {
    pause.push(await control('pause'));
    resume.push(await control('resume'));
  }
  if (pause.length < S.f3Reps) skipped.push(`F3 cycles ${pause.length + 1} to ${S.f3Reps}`);
  await ctx.rest.ok('POST', `/tasks/${task.id}/cancel`, {});
  await ctx.temporal.workflow.getHandle(workflowIdForTask(task.id)).result();
  await disconnectDevices([dev]);

  // Bare: signal -> workflow -> activity -> ws frame to us.
  const sock = new LiteSocket(`${ctx.bareUrl.replace(/^http/, 'ws')}/notify`);
  await sock.ready();
  const handle = await ctx.temporal.workflow.start<typeof bareControlWorkflow>('bareControlWorkflow', {
    taskQueue: ctx.bareQueue, workflowId: `bare-control-${process.pid}`,
  });
  const bare: number[] = [];
  const total = pause.length + resume.length;
  for (let i = 0; i < total; i++) {
    const got = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('bare notify timed out')), 10_000);
      sock.onFrame = (text, t) => {
        if (text === String(i)) {
          clearTimeout(timer);
          resolve(t);
        }
      };
    });
    const start = performance.now();
    await handle.signal<[number]>('poke', i);
    bare.push((await got) - start);
  }
  await handle.signal('done');
  await handle.result();
  await sock.close();
  log(`F3: pause p50 ${median(pause).toFixed(1)} ms, resume p50 ${median(resume).toFixed(1)} ms, bare p50 ${median(bare).toFixed(1)} ms (${pause.length} cycles)`);
  return { reps: pause.length, pause, resume, bare, conflicts };
}

// ---- F4: monitor fan-out ----------------------------------------------------------------------

export interface F4Level {
  monitors: number;
  events: number;
  frameBytes: number;
  /** Burst: every monitor subscribes to the finished run at once and gets all its events. */
  ours: { seconds: number; perS: number; subscribedMs: number };
  bare: { seconds: number; perS: number };
  ratio: number;
  /** Live: the monitors watched the run as it happened. */
  live: { polls: number | null; streams: number; spreadP50: number; spreadP99: number; lagP50: number; lagP99: number };
}

async function f4FanOut(ctx: Ctx, slot: () => number): Promise<F4Level[]> {
  const dev = ctx.devices[0];
  await connectDevices([dev], ctx.wsUrl);
  const out: F4Level[] = [];
  const wsBare = `${ctx.bareUrl.replace(/^http/, 'ws')}/fanout`;
  const headline = S.f4Monitors[S.f4Monitors.length - 1];
  let levelS = 0;
  for (const m of [headline, ...S.f4Monitors.slice(0, -1)]) {
    if (m !== headline && slot() < 2 + (levelS * m) / headline) {
      skipped.push(`F4 with ${m} monitors`);
      continue;
    }
    const levelStart = Date.now();
    const phaseEnd = Date.now() + 60_000;
    const monitors = await openSockets(m, () => new LiteSocket(ctx.wsUrl, ctx.rest.token, true));
    const ping = setInterval(() => monitors.forEach((s) => s.send('ping', {})), 5000);
    try {
      // Live: subscribe everyone right after the task is created, let it run.
      const task = (await ctx.rest.ok('POST', '/tasks', { workflow_id: ctx.wf.fanout, device_id: dev.id })).task;
      const taskId = task.id as string;
      const first = new Map<number, number>();
      const last = new Map<number, number>();
      const at = new Map<number, number>();
      const frames: string[] = [];
      let completed = 0;
      const counts = new Array<number>(m).fill(0);
      const allDone = new Promise<void>((resolve) => {
        monitors.forEach((s, i) => {
          s.onFrame = (text, t) => {
            const f = JSON.parse(text) as { type: string; payload: { task_id?: string; seq?: number; kind?: string; at?: number } };
            if (f.type !== 'task/event' || f.payload.task_id !== taskId || f.payload.seq === undefined) return;
            const seq = f.payload.seq;
            counts[i]++;
            if (i === 0) frames.push(text);
            if (!first.has(seq)) {
              first.set(seq, t);
              at.set(seq, f.payload.at ?? 0);
            }
            last.set(seq, t);
            if (f.payload.kind === 'run.completed' && ++completed === m) resolve();
          };
        });
      });
      monitors.forEach((s) => s.send('subscribe', { task_id: taskId, after_seq: 0 }));
      await Promise.race([allDone, sleep(Math.max(1000, phaseEnd - Date.now())).then(() => { throw new Error(`F4 live with ${m} monitors timed out`); })]);
      const events = counts[0];
      const { polls, streams } = await ctx.srv.call('polls', { taskId });
      // Event times are workflow time (epoch ms); deliveries are performance.now(): convert.
      const toEpoch = performance.timeOrigin;
      const spreads = [...first.keys()].map((seq) => last.get(seq)! - first.get(seq)!);
      const lags = [...first.keys()].map((seq) => toEpoch + last.get(seq)! - at.get(seq)!);

      // Burst: everyone subscribes again (after_seq 0) and gets every event from the stream.
      // One burst lasts a fraction of a second, so a hiccup of this shared machine can halve
      // it: F4_BURSTS rounds, ours and bare taking turns, and the median of each side.
      const oursBurst = async () => {
        let subscribed = 0;
        let subscribedAt = 0;
        let doneN = 0;
        const got = new Array<number>(m).fill(0);
        const burst = new Promise<number>((resolve) => {
          monitors.forEach((s, i) => {
            s.onFrame = (text, t) => {
              const f = JSON.parse(text) as { type: string; payload: { task_id?: string } };
              if (f.type === 'subscribed' && ++subscribed === m) subscribedAt = t;
              if (f.type !== 'task/event' || f.payload.task_id !== taskId) return;
              if (++got[i] === events && ++doneN === m) resolve(t);
            };
          });
        });
        const start = performance.now();
        monitors.forEach((s) => s.send('subscribe', { task_id: taskId, after_seq: 0 }));
        const end = await Promise.race([burst, sleep(30_000).then(() => { throw new Error(`F4 burst with ${m} monitors timed out`); })]);
        return { seconds: (end - start) / 1000, subscribedMs: subscribedAt ? subscribedAt - start : NaN };
      };

      // Bare: the same frames to the same number of sockets, each on its own "subscribe".
      await ctx.srv.call('bareFrames', { frames });
      const bareSocks = await openSockets(m, () => new LiteSocket(wsBare));
      const bareBurst = async () => {
        let bareDone = 0;
        const bareGot = new Array<number>(m).fill(0);
        const burst = new Promise<number>((resolve) => {
          bareSocks.forEach((s, i) => {
            s.onFrame = (text, t) => {
              const f = JSON.parse(text) as { type: string };
              if (f.type !== 'task/event') return;
              if (++bareGot[i] === events && ++bareDone === m) resolve(t);
            };
          });
        });
        const start = performance.now();
        bareSocks.forEach((s) => s.send('subscribe', { task_id: taskId, after_seq: 0 }));
        const end = await Promise.race([burst, sleep(30_000).then(() => { throw new Error(`F4 bare burst with ${m} sockets timed out`); })]);
        return (end - start) / 1000;
      };
      const oursRounds: { seconds: number; subscribedMs: number }[] = [];
      const bareRounds: number[] = [];
      for (let round = 0; round < S.f4Bursts; round++) {
        oursRounds.push(await oursBurst());
        bareRounds.push(await bareBurst());
      }
      await Promise.all(bareSocks.map((s) => s.close()));
      const oursS = median(oursRounds.map((r) => r.seconds));
      const bareS = median(bareRounds);
      const subscribedAt = median(oursRounds.map((r) => r.subscribedMs));
      const level: F4Level = {
        monitors: m, events,
        frameBytes: frames.length ? Math.round(frames.reduce((a, f) => a + Buffer.byteLength(f), 0) / frames.length) : 0,
        ours: { seconds: oursS, perS: (m * events) / oursS, subscribedMs: subscribedAt },
        bare: { seconds: bareS, perS: (m * events) / bareS },
        ratio: ratio((m * events) / oursS, (m * events) / bareS),
        live: {
          polls, streams,
          spreadP50: median(spreads), spreadP99: percentile(spreads, 99),
          lagP50: median(lags), lagP99: percentile(lags, 99),
        },
      };
      out.push(level);
      log(`F4 ${m} monitors x ${events} events: ours ${Math.round(level.ours.perS)} ev/s, bare ${Math.round(level.bare.perS)} ev/s: ${level.ratio.toFixed(2)}x; ${polls} history polls`);
    } finally {
      clearInterval(ping);
      await Promise.all(monitors.map((s) => s.close()));
    }
    if (m === headline) levelS = (Date.now() - levelStart) / 1000;
  }
  await disconnectDevices([dev]);
  return out.sort((a, b) => a.monitors - b.monitors);
}

// ---- F5: REST ---------------------------------------------------------------------------------

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

async function cannon(url: string, seconds: number, headers: Record<string, string> = {}): Promise<Cannon> {
  const r = await autocannon({ url, connections: S.f5Connections, duration: seconds, headers, timeout: 10 });
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

async function f5Rest(ctx: Ctx, slot: () => number): Promise<F5Result> {
  // A finished 3-step run of its own (the F1 shape), whatever ran before: the task read is the
  // same in every mode (it used to be the last run of the figures before: 10 steps after F4).
  await connectDevices(ctx.devices.slice(0, 1), ctx.wsUrl);
  const { taskId } = await oursRun(ctx, 0);
  await disconnectDevices(ctx.devices.slice(0, 1));
  const oursUrl = `${ctx.rest.base}/tasks/${taskId}`;
  const bareUrl = `${ctx.bareUrl}/tasks/${taskId}`;
  const auth = { authorization: `Bearer ${ctx.rest.token}` };
  if (S.f5Warmup) {
    await autocannon({ url: oursUrl, connections: S.f5Connections, duration: S.f5Warmup, headers: auth });
    await autocannon({ url: bareUrl, connections: S.f5Connections, duration: S.f5Warmup });
  }
  const seconds = Math.max(2, Math.min(S.f5Seconds, Math.floor(slot() / 2 - S.f5Warmup)));
  if (seconds < S.f5Seconds) skipped.push(`F5 for ${seconds} s per side instead of ${S.f5Seconds} s`);
  // In rounds, ours and bare taking turns, so that a disturbance from outside (this machine is
  // shared) falls on both rather than on one side.
  const rounds = seconds >= 4 ? 2 : 1;
  const oursRounds: Cannon[] = [];
  const bareRounds: Cannon[] = [];
  const cpu = { ours: [] as CpuSample[], bare: [] as CpuSample[] };
  const measured = async (url: string, headers: Record<string, string>, into: Cannon[], cpuInto: CpuSample[]) => {
    const { result, cpu } = await accounted(ctx, () => cannon(url, seconds / rounds, headers), (c) => c.requests / 1000);
    into.push(result);
    cpuInto.push(cpu);
  };
  for (let i = 0; i < rounds; i++) {
    await measured(oursUrl, auth, oursRounds, cpu.ours);
    await measured(bareUrl, {}, bareRounds, cpu.bare);
  }
  const ours = combine(oursRounds);
  const bare = combine(bareRounds);
  if (ours.non2xx || bare.non2xx) log(`F5: non-2xx answers: ours ${ours.non2xx}, bare ${bare.non2xx}`);
  log(`F5: ours ${Math.round(ours.perS)} req/s, bare ${Math.round(bare.perS)} req/s: ${ratio(ours.perS, bare.perS).toFixed(2)}x`);
  const perK = { ours: cpuMean(cpu.ours), bare: cpuMean(cpu.bare) };
  log(`F5 CPU ms per 1,000 requests: ours ${cpuText(perK.ours)}; bare ${cpuText(perK.bare)}`);
  return { seconds, connections: S.f5Connections, taskId, ours, bare, ratio: ratio(ours.perS, bare.perS), cpu: perK };
}

// ---- F6: memory -------------------------------------------------------------------------------

export interface MemDelta {
  n: number;
  /** Main-thread heap + external, bytes per item. */
  heapPer: number;
  /** Heap of the workflow threads, bytes per item. */
  threadPer: number;
  rssPer: number;
}

export interface F6Result {
  sockets: { ours: MemDelta; bare: MemDelta; ratio: number };
  /** ratio: of main heap + workflow threads' heap. */
  runs: { ours: MemDelta; bare: MemDelta; ratio: number; ratioRss: number };
}

const heapOf = (m: MemorySample) => m.heapUsed + m.external;
const delta = (n: number, a: MemorySample, b: MemorySample): MemDelta =>
  ({ n, heapPer: (heapOf(b) - heapOf(a)) / n, threadPer: (b.threadHeap - a.threadHeap) / n, rssPer: (b.rss - a.rss) / n });

/** A memory sample once the heaps stopped shrinking (what the last phase let go is gone). */
async function settledMemory(ctx: Ctx): Promise<MemorySample> {
  let last = await ctx.srv.call('memory');
  for (let i = 0; i < 2; i++) {
    await sleep(300);
    const m = await ctx.srv.call('memory');
    const moved = Math.abs(heapOf(m) + m.threadHeap - heapOf(last) - last.threadHeap);
    last = m;
    if (moved < 256 * 1024) break;
  }
  return last;
}

async function f6Memory(ctx: Ctx): Promise<F6Result> {
  slice('F6'); // fixed sizes: it takes what it takes, the later phases share what is left
  const n = S.f6Sockets;
  const devs = ctx.devices.slice(0, n);
  const wsBare = ctx.bareUrl.replace(/^http/, 'ws');
  // Warm the paths once (first-use allocations are not per socket).
  await connectDevices(devs.slice(0, 5), ctx.wsUrl);
  await disconnectDevices(devs.slice(0, 5));
  await Promise.all((await openSockets(5, () => new LiteSocket(`${wsBare}/idle`))).map((s) => s.close()));
  await until(async () => (await ctx.srv.call('counts')).devices === 0, 10_000, 'devices gone');

  // Bare sockets.
  let before = await settledMemory(ctx);
  const bareSocks = await openSockets(n, () => new LiteSocket(`${wsBare}/idle`));
  await until(async () => (await ctx.srv.call('counts')).bareSockets >= n, 20_000, 'bare sockets');
  let after = await ctx.srv.call('memory');
  const bareSockets = delta(n, before, after);
  await Promise.all(bareSocks.map((s) => s.close()));

  // Our device sockets (device tokens, presence written).
  before = await settledMemory(ctx);
  await connectDevices(devs, ctx.wsUrl);
  await until(async () => (await ctx.srv.call('counts')).devices === n, 30_000, 'devices connected');
  await sleep(500); // presence writes and online signals settle
  after = await ctx.srv.call('memory');
  const oursSockets = delta(n, before, after);
  log(`F6 sockets: ours ${(oursSockets.heapPer / 1024).toFixed(1)} KB, bare ${(bareSockets.heapPer / 1024).toFixed(1)} KB per socket`);

  // Runs parked: the bare ones first (on a condition, each says so over the notify socket),
  // then ours (in a held step, one per device), with the devices connected and idle throughout.
  const k = S.f6Runs;
  const sock = new LiteSocket(`${wsBare}/notify`);
  await sock.ready();
  before = await settledMemory(ctx);
  let parked = 0;
  sock.onFrame = () => { parked++; };
  const handles = await pool(Array.from({ length: k }, (_, i) => i), 20, (i) =>
    ctx.temporal.workflow.start<typeof bareParkedWorkflow>('bareParkedWorkflow', {
      taskQueue: ctx.bareQueue, workflowId: `bare-parked-${process.pid}-${i}`, args: [i],
    }));
  await until(() => parked >= k, 60_000, 'bare runs parked');
  await sleep(1000);
  after = await ctx.srv.call('memory');
  const bareRuns = delta(k, before, after);
  await pool(handles, 20, (h) => h.signal('release'));
  await Promise.all(handles.map((h) => h.result()));
  await sock.close();

  before = await settledMemory(ctx);
  const waits = devs.slice(0, k).map((d) => d.next((e) => e.type === 'dispatch', 60_000, 'parked step'));
  const tasks = await pool(devs.slice(0, k), 20, async (d) =>
    (await ctx.rest.ok('POST', '/tasks', { workflow_id: ctx.wf.hold, device_id: d.id })).task.id as string);
  await Promise.all(waits.map((w) => w.promise));
  await sleep(1000); // the step.dispatched events recorded, activities heartbeating
  after = await ctx.srv.call('memory');
  const oursRuns = delta(k, before, after);
  await pool(tasks, 20, (id) => ctx.rest.ok('POST', `/tasks/${id}/cancel`, {}));
  await Promise.all(tasks.map((id) => ctx.temporal.workflow.getHandle(workflowIdForTask(id)).result()));
  await disconnectDevices(devs);
  const kb = (d: MemDelta) => `${((d.heapPer + d.threadPer) / 1024).toFixed(1)} KB (rss ${(d.rssPer / 1024).toFixed(1)} KB)`;
  log(`F6 runs: ours ${kb(oursRuns)}, bare ${kb(bareRuns)} per parked run`);
  return {
    sockets: { ours: oursSockets, bare: bareSockets, ratio: ratio(oursSockets.heapPer, bareSockets.heapPer) },
    runs: {
      ours: oursRuns, bare: bareRuns,
      ratio: ratio(oursRuns.heapPer + oursRuns.threadPer, bareRuns.heapPer + bareRuns.threadPer),
      ratioRss: ratio(oursRuns.rssPer, bareRuns.rssPer),
    },
  };
}

// ---- profiles of what missed ------------------------------------------------------------------

export interface ProfileResult {
  figure: string;
  what: string;
  summary: ProfileSummary;
}

/** A short repeat of our side of each figure that missed its target, under the CPU profiler. */
async function profiles(ctx: Ctx, r: Results, _slot: () => number): Promise<ProfileResult[]> {
  const out: ProfileResult[] = [];
  const profiled = async (figure: string, what: string, work: () => Promise<unknown>) => {
    if (left() < S.profileS + 4) {
      skipped.push(`the CPU profile of ${figure}`);
      return;
    }
    await ctx.srv.call('profileStart');
    try {
      await work();
    } finally {
      out.push({ figure, what, summary: await ctx.srv.call('profileStop', { top: 12 }) });
    }
  };
  const f1 = r.f1[r.f1.length - 1];
  if (f1 && f1.ratio < 0.8) {
    const c = f1.concurrency;
    await connectDevices(ctx.devices.slice(0, c), ctx.wsUrl);
    await profiled('F1', `3-step runs at concurrency ${c} for ${S.profileS} s`, () =>
      closedLoop(c, c * 20, S.profileS, async (lane) => ({ ms: (await oursRun(ctx, lane)).ms, id: '' })));
    await disconnectDevices(ctx.devices.slice(0, c));
  }
  if (r.f5 && r.f5.ratio < 0.7) {
    const auth = { authorization: `Bearer ${ctx.rest.token}` };
    await profiled('F5', `GET /tasks/:id, ${S.f5Connections} connections for ${S.profileS} s`, () =>
      cannon(`${ctx.rest.base}/tasks/${r.f5!.taskId}`, S.profileS, auth));
    // The same path in layers: middleware only, + authentication, + the task and its steps.
    const layers = [
      { path: '/healthz', what: 'the middleware stack (request id, metrics, errors, headers, access log)', url: `${ctx.rest.base.replace(/\/api\/v1$/, '')}/healthz`, auth: false },
      { path: '/api/v1/auth/me', what: '+ rate limits, JWT (verified once per token), session check (in memory, SESSION_CACHE_TTL_MS), the user (1 query, an entity)', url: `${ctx.rest.base}/auth/me`, auth: true },
      { path: '/api/v1/tasks/:id', what: '+ the task and its steps (1 query, plain rows) instead of the user, presented', url: `${ctx.rest.base}/tasks/${r.f5.taskId}`, auth: true },
    ];
    for (const l of layers) {
      if (left() < S.profileS + 3) {
        skipped.push(`F5 layer ${l.path}`);
        continue;
      }
      const c = await cannon(l.url, S.profileS, l.auth ? auth : {});
      r.f5Layers.push({ path: l.path, what: l.what, perS: c.non2xx ? NaN : c.perS });
    }
    r.f5Layers.push({ path: 'bare /tasks/:id', what: 'bare koa, one pg query (the F5 baseline)', perS: r.f5.bare.perS });
  }
  const f4 = r.f4[r.f4.length - 1];
  if (f4 && f4.ratio < 0.7) {
    const m = f4.monitors;
    const monitors = await openSockets(m, () => new LiteSocket(ctx.wsUrl, ctx.rest.token, true));
    const taskId = lastOursTask;
    let done = 0;
    const got = new Array<number>(m).fill(0);
    const events = (await ctx.rest.ok('GET', `/tasks/${taskId}/events`)).list.length as number;
    await profiled('F4', `${m} monitors subscribing to a finished ${3}-step run, three times`, async () => {
      for (let round = 0; round < 3; round++) {
        done = 0;
        got.fill(0);
        const all = new Promise<void>((resolve) => monitors.forEach((s, i) => {
          s.onFrame = (text) => {
            const f = JSON.parse(text) as { type: string };
            if (f.type === 'task/event' && ++got[i] === events && ++done === m) resolve();
          };
        }));
        monitors.forEach((s) => s.send('subscribe', { task_id: taskId, after_seq: 0 }));
        await Promise.race([all, sleep(20_000)]);
      }
    });
    await Promise.all(monitors.map((s) => s.close()));
  }
  for (const p of out) log(`profile ${p.figure}: top area ${p.summary.areas[0]?.area} ${p.summary.areas[0]?.pct.toFixed(0)}%`);
  return out;
}

// ---- go ---------------------------------------------------------------------------------------

let exitCode = 0;
try {
  await main();
} catch (err) {
  log(`failed: ${(err as Error).stack ?? String(err)}`);
  exitCode = 1;
}
await cleanup();
log(exitCode === 0 ? 'done' : 'done, with errors');
process.exit(exitCode);
