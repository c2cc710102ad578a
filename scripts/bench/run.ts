// `npm run bench`: measures the orchestrator against bare baselines in the same run, on the same
// Temporal dev server and PostgreSQL, and writes docs/benchmarks.md. Starts everything it needs
// (a Temporal dev server on free ports, a fresh database jarvis_bench_<ts> that it drops at the
// end, the system under test in a child process: scripts/bench/server.ts) and stops it again.
// This file is the harness (options, the system, the time budget, the report); each figure is a
// module of figures/, sharing harness.ts.
//
//   node scripts/bench/run.ts            full run (under 10 minutes, profiles of what missed)
//   node scripts/bench/run.ts --quick    smaller sizes (under 2 minutes; on a busy machine the
//                                        time budget leaves growth points out and says so)
//   node scripts/bench/run.ts --smoke    tiny sizes, one data point each (seconds): a test runs it
//   BENCH_PROFILE_DIR=<dir>       also write the raw profiles of the figures that missed
//   BENCH_HEAP_DIR=<dir>          heap snapshots of the server's threads before and after F6
//                        parks our runs (compare them in Chrome DevTools' Memory tab)
//   BENCH_SERVER_NODE_ARGS=<flags> extra Node flags for the server process: `--cpu-prof
//                        --cpu-prof-dir=<dir>` profiles every thread (the workflow threads too)
//   BENCH_PG_STATEMENTS=<file> F1's PostgreSQL statements, commits, WAL and rows written per run
//                        (needs pg_stat_statements preloaded: point BENCH_PG_URL at such a server)
//   BENCH_F5_RATE=<n>    F5 at a fixed n requests/s a side instead of as fast as it goes: CPU per
//                        request without the contention of a saturated machine (compare changes)
//   --help               the other options
//
// Loopback only (127.0.0.1); every request loop is bounded in count and in time.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type { Orm } from '../../src/db/orm.ts';
import { OwnedRepos } from '../../src/db/owned.ts';
import { registerDevice } from '../../src/domain/devices.ts';
import { TEMPORAL_BIN } from '../../src/temporal/dev-server.ts';
import { connectClient } from '../../src/temporal/client.ts';
import { z } from 'zod';
import { arg, readCommandLine } from '../lib/cli.ts';
import { BenchDevice, Rest, closeBareDevices, connectDevices, disconnectDevices, linear, openBareDevices } from './clients.ts';
import { f1Throughput } from './figures/f1-throughput.ts';
import { f2PerStep } from './figures/f2-per-step.ts';
import { f3Control } from './figures/f3-control.ts';
import { f4FanOut } from './figures/f4-fan-out.ts';
import { f5Rest } from './figures/f5-rest.ts';
import { f6Memory } from './figures/f6-memory.ts';
import { f7Notifications } from './figures/f7-notifications.ts';
import { f8FirstStep } from './figures/f8-first-step.ts';
import { profiles } from './figures/profiles.ts';
import { bareRun, oursRun, quiet, vacuumed, type Bench } from './harness.ts';
import { ROOT, machineInfo, pool, sleep, type MachineInfo, type ServerSetup } from './lib.ts';
import { renderReport, type Results } from './report.ts';
import { postmasterOf } from './cpu.ts';
import { SIZES } from './sizes.ts';
import { prepare } from './system.ts';
import { ServerProcess } from './server-process.ts';

// ---- options ----------------------------------------------------------------------------------

const FIGURES = ['F1', 'F2', 'F3', 'F4', 'F5', 'F6', 'F7', 'F8'] as const;
type Figure = (typeof FIGURES)[number];
const argv = process.argv.slice(2);
const { options: opts } = readCommandLine({
  name: 'bench',
  usage: `Usage: npm run bench -- [--quick | --smoke] [--only F1,F5] [--out docs/benchmarks.md]

Measures the orchestrator against bare baselines (the same Temporal and PostgreSQL) and writes
the report. The full run takes under 10 minutes and both cores: --quick for a look.`,
  options: {
    quick: { schema: arg.flag(), flag: true, help: 'smaller sizes (under 2 minutes)' },
    smoke: { schema: arg.flag(), flag: true, help: 'tiny sizes, one data point each (seconds): a test runs it' },
    out: { schema: arg.text().optional(), placeholder: 'path', help: 'write the report there (default docs/benchmarks.md)' },
    profile: {
      schema: z.boolean().optional(), flag: true,
      help: 'CPU profiles of the server for the figures that missed their target (default on in the full run only; --no-profile)',
    },
    'log-level': { schema: arg.choice(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(), placeholder: 'level', help: 'the server\'s log level (default: LOG_LEVEL\'s default, info, with the access log)' },
    only: {
      schema: z.string().transform((v) => v.toUpperCase().split(',').map((x) => x.trim()).filter(Boolean))
        .pipe(z.array(z.enum(FIGURES, { error: `takes figures among ${FIGURES.join(',')}` }))).optional(),
      placeholder: 'F1,F5', help: 'measure only these figures',
    },
  },
}, argv);
const mode = opts.smoke ? 'smoke' : opts.quick ? 'quick' : 'full';
const S = SIZES[mode];
const outPath = resolve(opts.out ?? resolve(ROOT, 'docs', 'benchmarks.md'));
// Profiles take time the quick mode does not have: on by default only in the full run.
const profiling = opts.profile ?? mode === 'full';
const logLevel = opts['log-level'];
const wanted = (fig: Figure) => !opts.only || opts.only.includes(fig);

const t0 = Date.now();
/** Seconds left before the phases must be done (clean-up and the report need the rest). */
const left = () => S.limitS - 14 - (Date.now() - t0) / 1000;
const skipped: string[] = [];
/** Shares of the time left that each phase may use (what one leaves goes to the next ones). */
const WEIGHTS = { F6: 0.2, F1: 0.22, F2: 0.08, F3: 0.1, F4: 0.13, F5: 0.13, F7: 0.04, F8: 0.05, profiles: 0.1 };
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
  // Only this server's processes count as PostgreSQL's CPU (other work may use another server).
  const postmaster = postmasterOf(Number((await orm.em.fork().getConnection().execute('select pg_backend_pid() as pid'))[0]?.pid));
  log(`Temporal dev server at ${temporalAddress}; database ${databaseName} (PostgreSQL ${pgVersion}${postmaster ? `, postmaster ${postmaster}` : ''})`);
  log('workflow bundles built');

  const settings = loadSettings();
  log(`settings beyond the defaults: ${Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  const setup: ServerSetup = {
    temporalAddress, databaseUrl, workflowBundle, bareBundle,
    taskQueue: 'bench-task-runs', bareQueue: 'bench-bare', nodeId: 'bench-node', logLevel, dataDir: dir, settings,
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

  const ctx: Bench = {
    srv, rest, temporal, wsUrl: `${ready.apiUrl.replace(/^http/, 'ws')}/ws`, bareUrl: ready.bareUrl,
    bareQueue: setup.bareQueue, devices, wf, pids: { temporal: temporalPid, server: srv.child.pid ?? 0, postgres: postmaster }, orm, autovacuum,
    sizes: S, log, left, skipped, lastOursTask: '', f5Users: [],
  };

  // Warm-up: JIT, the workflow bundles in the workers' isolates, connection pools.
  await connectDevices(devices.slice(0, 1), ctx.wsUrl);
  const bareDevices = await openBareDevices(ctx.bareUrl, 1);
  for (let i = 0; i < S.warmupRuns; i++) {
    await oursRun(ctx, 0);
    await bareRun(ctx, 3, 0);
    await bareRun(ctx);
  }
  await closeBareDevices(bareDevices);
  await disconnectDevices(devices.slice(0, 1));
  log('warmed up');

  const results: Results = {
    mode, machine, pgVersion, date: new Date().toISOString(), command: commandLine(), sizes: S,
    f1: [], f2: null, f3: null, f4: [], f5: null, f6: null, f7: null, f8: null, settings, profiles: [], f5Layers: [], skipped: [], durationS: 0,
  };
  log(`${Math.round(left())} s left for the figures`);
  for (const p of Object.keys(WEIGHTS) as Phase[]) {
    if (p === 'profiles' ? !(profiling && S.profileS > 0) : !wanted(p)) phasesLeft.delete(p);
  }
  if (wanted('F6')) {
    slice('F6'); // fixed sizes: it takes what it takes, the later phases share what is left
    results.f6 = await f6Memory(ctx);
  }
  if (wanted('F1')) results.f1 = await f1Throughput(ctx, slice('F1'));
  if (wanted('F2')) results.f2 = await f2PerStep(ctx, slice('F2'));
  if (wanted('F3')) results.f3 = await f3Control(ctx, slice('F3'));
  if (wanted('F4')) results.f4 = await f4FanOut(ctx, slice('F4'));
  if (wanted('F5')) {
    await vacuumed(ctx, 'F5');
    await quiet(ctx, 'F5');
    results.f5 = await f5Rest(ctx, slice('F5'));
  }
  if (wanted('F7')) results.f7 = await f7Notifications(ctx, slice('F7'));
  if (wanted('F8')) results.f8 = await f8FirstStep(ctx, slice('F8'));
  if (profiling && S.profileS > 0) results.profiles = await profiles(ctx, results, slice('profiles'));
  results.skipped = skipped;
  results.durationS = (Date.now() - t0) / 1000;

  const previous = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, renderReport(results, previous));
  log(`wrote ${relative(process.cwd(), outPath) || outPath}`);
}

/**
 * The server runs at its defaults except where the bench's load needs more, and only as far as
 * it needs (the report lists these). All requests come from 127.0.0.1, so the per-IP limit must
 * carry F5's whole rate, and the per-user one a user's share of it (a bucket refills at
 * limit / 60 per second: a limit of 60 x the rate is never refused); F5_CEILING_RPS is about twice
 * the bare baseline's rate on a quiet machine (docs/benchmarks.md), so ours cannot reach it.
 */
export const F5_CEILING_RPS = 20_000;
function loadSettings(): Record<string, string> {
  const perUserRps = F5_CEILING_RPS / S.f5Users;
  const settings: Record<string, string> = {
    RATE_LIMIT_IP_PER_MIN: String(F5_CEILING_RPS * 60),
    // F5's users each at their share; the bench user submits F1's runs (< 100/s at 200 loops).
    RATE_LIMIT_USER_PER_MIN: String(Math.ceil(Math.max(perUserRps, 100)) * 60),
    // The bench user registers and logs in, F5's users log in, once each.
    RATE_LIMIT_AUTH_PER_MIN: String(S.f5Users + 2),
    // One bench user watches a run from F4's monitors (and F7's one), a few more while closing.
    WS_MAX_MONITORS_PER_USER: String(Math.max(...S.f4Monitors) + 10),
    // F7's receivers are on 127.0.0.1, like everything else of the bench.
    WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
  };
  // Runs one user holds unfinished at once: F1's loops (a finished run leaves the count when the
  // mirror has it, a moment after its result: twice the loops), F6's parked runs.
  const unfinished = Math.max(2 * Math.max(...S.f1Levels), S.f6Runs + 10);
  if (unfinished > 500) settings.ACCOUNT_MAX_UNFINISHED_RUNS = String(unfinished);
  return settings;
}

/** Devices of the bench user, registered the way POST /users/devices does (fixtures, not measured). */
async function registerDevices(orm: Orm, userId: string, n: number): Promise<BenchDevice[]> {
  return pool(Array.from({ length: n }, (_, i) => i), 8, async (i) => {
    const { device, token } = await registerDevice(new OwnedRepos(orm.em.fork(), userId), {
      device_id: `bench-${i}`, device_name: `Bench ${i}`, os_type: 'windows',
    }, Number.MAX_SAFE_INTEGER); // fixtures of the harness, not a user's registrations
    return new BenchDevice(device.id, token);
  });
}

function commandLine(): string {
  const flags = argv.filter((a, i) => a !== '--out' && !a.startsWith('--out=') && argv[i - 1] !== '--out');
  return `npm run bench${flags.length ? ` -- ${flags.join(' ')}` : ''}`;
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
