// `npm run test:chaos`: faults that must not lose or repeat anything. While multi-step runs go
// on it kills, each on a fixed rotation so that every kind lands in every run of the script
// (the seed only orders each round and picks the moments):
//   worker    SIGKILL of the task worker process, restarted;
//   api       SIGKILL of the API node holding every device socket, restarted;
//   temporal  SIGKILL of the Temporal dev server, restarted on its database file;
//   device    SIGKILL of a PC app process in the middle of a step, restarted on its key store;
//   postgres  SIGKILL of the postmaster of the run's own PostgreSQL cluster, started again;
//   reset     every connection between the PC apps and the server reset (a TCP proxy in the path);
//   blackhole the proxy drops all traffic for a few seconds, then resets what it held.
// Each fault waits until a step is in flight on a device and fails the script if none is.
// Then it checks, against records the system under test does not keep:
//   effects   each PC app's own journal of the effects it performed, keyed by (task, node,
//             visit), never by attempt: each node of a completed run exactly once;
//   events    what a monitor that stayed subscribed saw, against the sequence of kinds a run
//             of this definition must produce, seq 1..n without gap or repeat;
//   mirror    PostgreSQL's task, steps and events against the run in Temporal (its result,
//             its `state` query, its history decoded by scripts/lib/history-events.ts, not by
//             the system's reader), field by field.
// Any effect twice or missing, any event wrong, any field that differs is printed, and the exit
// code is 1. Loopback only.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { MonitorClient } from '../src/clients/monitor-client.ts';
import { migrate, openOrm } from '../src/db/orm.ts';
import { Task, TaskEvent, TaskStep } from '../src/db/entities.ts';
import { TEMPORAL_BIN, freePort, stopChild } from '../src/temporal/dev-server.ts';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes.ts';
import { stateQuery, workflowIdForTask, type RunState, type TaskRunResult } from '../workflows/api.ts';
import { arg, readCommandLine } from './lib/cli.ts';
import { historyRunEvents } from './lib/history-events.ts';
import { PrivatePostgres } from './lib/private-postgres.ts';

const { options: opts } = readCommandLine({
  name: 'chaos',
  usage: `Usage: npm run test:chaos -- [--runs 12] [--devices 4] [--faults-for-s 60] [--min-each 2] [--settle-s 180] [--seed n]

Kills the task worker, the API node, the Temporal dev server, PC app processes and PostgreSQL
while steps are in flight, every kind at least --min-each times, then checks effects, events and
the mirror against records of their own. Exit code 0 when all holds.`,
  options: {
    runs: { schema: arg.int(1, 10_000).default(12), placeholder: 'n', help: 'runs to submit at the start (more are fed to keep devices busy)' },
    devices: { schema: arg.int(1, 100).default(4), placeholder: 'n', help: 'PC app processes' },
    'faults-for-s': { schema: arg.number(0).default(60), placeholder: 'n', help: 'seconds of faults at least' },
    'min-each': { schema: arg.int(1, 10_000).default(2), placeholder: 'n', help: 'faults of each kind at least' },
    'settle-s': { schema: arg.number(1).default(180), placeholder: 'n', help: 'seconds the runs may take to end after the faults' },
    seed: { schema: arg.int(0).optional(), placeholder: 'n', help: 'the random seed, to replay a run\'s faults (default: from the clock)' },
  },
});
const DEVICES = opts.devices;
const SEED = opts.seed ?? Date.now() % 100_000;
const KINDS = ['worker', 'api', 'temporal', 'device', 'postgres', 'reset', 'blackhole'] as const;
type Kind = (typeof KINDS)[number];
const STEPS = ['s1', 's2', 's3'];

let rng = SEED;
const random = () => ((rng = (rng * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const shuffled = <T>(xs: readonly T[]) => xs.map((x) => [random(), x] as const).sort((a, b) => a[0] - b[0]).map(([, x]) => x);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const problems: string[] = [];
let stopping = false;

const root = resolve(import.meta.dirname, '..');
const dir = resolve(root, '.data', `chaos-${process.pid}`);
mkdirSync(dir, { recursive: true });
const [tPort, uiPort, apiPort, proxyPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
const address = `127.0.0.1:${tPort}`;
log(`seed ${SEED}: ${opts.runs} runs on ${DEVICES} PC app processes; faults for ${opts['faults-for-s']} s, each kind at least ${opts['min-each']} times`);
const pg = await PrivatePostgres.create();
const env = {
  PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATABASE_URL: pg.url, TEMPORAL_ADDRESS: address,
  PORT: String(apiPort), NODE_ID: 'chaos-node', TASK_QUEUE: 'chaos-runs', LOG_LEVEL: 'error', WS_HEARTBEAT_MS: '3000',
};

const procs: Record<'temporal' | 'api' | 'worker', ChildProcess | null> = { temporal: null, api: null, worker: null };
interface App { id: string; token: string; store: string; journal: string; child: ChildProcess | null; inFlight: Set<string> }
const apps: App[] = [];
function startTemporal() {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(tPort), '--ui-port', String(uiPort), '--headless',
    '--db-filename', resolve(dir, 'temporal.db'), '--log-level', 'error',
    '--dynamic-config-value', 'system.forceSearchAttributesCacheRefreshOnRead=true'];
  for (const sa of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${sa.name}=${sa.type}`);
  procs.temporal = spawn(TEMPORAL_BIN, args, { stdio: 'ignore' });
}
function startNode(which: 'api' | 'worker') {
  const child = spawn(process.execPath, [resolve(root, 'workers', which === 'api' ? 'api.ts' : 'task-worker.ts')], {
    cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'],
  });
  procs[which] = child;
  child.once('exit', (code, signal) => {
    if (!stopping && signal !== 'SIGKILL' && procs[which] === child) problems.push(`the ${which} process exited by itself (${code ?? signal})`);
  });
}
function kill9(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    child.once('exit', () => res());
    child.kill('SIGKILL');
  });
}
async function until(check: () => Promise<boolean>, ms: number, what: string) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await sleep(250);
  }
  throw new Error(`timed out: ${what}`);
}
const api = (path: string, init: RequestInit & { token?: string } = {}) =>
  fetch(`http://127.0.0.1:${apiPort}/api/v1${path}`, {
    signal: AbortSignal.timeout(10_000),
    ...init,
    headers: { 'content-type': 'application/json', ...(init.token ? { authorization: `Bearer ${init.token}` } : {}) },
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as { data: any } }));
const apiUp = () => fetch(`http://127.0.0.1:${apiPort}/readyz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.ok);
// Whatever ends this script, nothing it started outlives it.
process.on('exit', () => {
  for (const child of [procs.temporal, procs.api, procs.worker, ...apps.map((a) => a.child)]) child?.kill('SIGKILL');
  pg.discard();
  rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(2));

startTemporal();
await until(async () => { const c = await Connection.connect({ address, connectTimeout: 500 }); await c.close(); return true; }, 60_000, 'temporal');
const orm = await openOrm(pg.url);
await migrate(orm);
startNode('api');
startNode('worker');
await until(apiUp, 60_000, 'api');

// ---- PC apps: processes with a key store and a journal of their own ---------------------------

const email = `chaos-${Date.now()}@example.com`;
await api('/auth/register', { method: 'POST', body: JSON.stringify({ email, password: 'chaos chaos chaos' }) });
const { access_token: token } = (await api('/auth/login', { method: 'POST', body: JSON.stringify({ email, password: 'chaos chaos chaos' }) })).body.data;
const wsUrl = `ws://127.0.0.1:${apiPort}/ws`;

// The network between the PC apps and the server: a TCP proxy they connect through.
const links = new Set<{ client: Socket; upstream: Socket }>();
let blackholed = false;
const proxy = createServer((client) => {
  const upstream = connect(apiPort, '127.0.0.1');
  const link = { client, upstream };
  links.add(link);
  // Dropped, not buffered: what a dead route does to packets.
  client.on('data', (d) => { if (!blackholed) upstream.write(d); });
  upstream.on('data', (d) => { if (!blackholed) client.write(d); });
  const close = () => {
    links.delete(link);
    client.destroy();
    upstream.destroy();
  };
  for (const end of [client, upstream]) {
    end.on('error', close);
    end.on('close', close);
  }
});
await new Promise<void>((res) => proxy.listen(proxyPort, '127.0.0.1', () => res()));
/** Resets every proxied connection (RST to both ends). */
const resetLinks = () => {
  for (const { client, upstream } of links) {
    client.resetAndDestroy();
    upstream.resetAndDestroy();
  }
  links.clear();
};
const deviceWsUrl = `ws://127.0.0.1:${proxyPort}/ws`;

function startApp(app: App): Promise<void> {
  const child = spawn(process.execPath, [resolve(root, 'scripts', 'lib', 'chaos-device.ts'), deviceWsUrl, app.token, app.store, app.journal], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' },
  });
  app.child = child;
  app.inFlight = new Set();
  let buf = '';
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`PC app ${app.id} did not connect`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const [what, key] = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        if (what === 'connected') { clearTimeout(timer); res(); }
        else if (what === 'start') app.inFlight.add(key);
        else if (what === 'end') app.inFlight.delete(key);
      }
    });
    child.once('exit', () => app.inFlight.clear());
  });
}
for (let i = 0; i < DEVICES; i++) {
  const d = (await api('/users/devices', { method: 'POST', token, body: JSON.stringify({ device_id: `chaos-${i}`, device_name: `Chaos ${i}` }) })).body.data;
  const app: App = { id: d.device.id, token: d.device_token, store: resolve(dir, `app-${i}.store.jsonl`), journal: resolve(dir, `app-${i}.journal.jsonl`), child: null, inFlight: new Set() };
  await startApp(app);
  apps.push(app);
}

// Three device steps; an attempt the PC stopped in is tried again (onInterrupt: retry, default).
const definition = {
  nodes: [
    { id: 'start', type: 'start' },
    ...STEPS.map((id, i) => ({ id, type: 'chaos.work', params: { ms: 500 + i * 250 }, retry: { maxAttempts: 10, initialIntervalMs: 200 } })),
    { id: 'end', type: 'end' },
  ],
  edges: [{ from: 'start', to: 's1' }, { from: 's1', to: 's2' }, { from: 's2', to: 's3' }, { from: 's3', to: 'end' }],
};
const wf = (await api('/workflows', { method: 'POST', token, body: JSON.stringify({ name: 'chaos', definition }) })).body.data.workflow.id;
// Monitors that stay subscribed through every fault; a socket holds at most WS_MAX_SUBSCRIPTIONS
// (100 by default) task subscriptions, so each takes 50 runs.
const RUNS_PER_MONITOR = 50;
const monitors: MonitorClient[] = [];
const monitorOf = new Map<string, MonitorClient>();
/** A new monitor (tried again while the API node is away). */
async function connectMonitor(): Promise<MonitorClient> {
  for (const end = Date.now() + 60_000; ;) {
    const monitor = new MonitorClient({ url: wsUrl, token, reconnect: true });
    try {
      await monitor.start();
      return monitor;
    } catch (err) {
      await monitor.stop();
      if (Date.now() > end) throw err;
      await sleep(250);
    }
  }
}
async function watch(taskId: string): Promise<void> {
  let monitor = monitors.at(-1);
  if (!monitor || monitor.cursors.size >= RUNS_PER_MONITOR) {
    monitor = await connectMonitor();
    monitors.push(monitor);
  }
  monitor.subscribe(taskId);
  monitorOf.set(taskId, monitor);
}
const eventsOf = (taskId: string) => monitorOf.get(taskId)?.eventsOf(taskId) ?? [];
const tasks: string[] = [];
const taskDevice = new Map<string, string>();
/** Submits a run (retrying while the API is away: the idempotency key makes that safe). */
async function submit(app: App): Promise<void> {
  const body = JSON.stringify({ workflow_id: wf, device_id: app.id, idempotency_key: `chaos-${tasks.length}` });
  let taskId = '';
  await until(async () => {
    const res = await api('/tasks', { method: 'POST', token, body });
    if (res.status !== 200 && res.status !== 201) return false;
    taskId = res.body.data.task.id;
    return true;
  }, 60_000, 'a run submitted');
  tasks.push(taskId);
  taskDevice.set(taskId, app.id);
  await watch(taskId);
}
for (let i = 0; i < opts.runs; i++) await submit(apps[i % DEVICES]);
const TERMINAL = ['run.completed', 'run.failed', 'run.cancelled'];
/** Runs of the app's device not seen to end yet. */
const unfinished = (app: App) => tasks.filter((t) => taskDevice.get(t) === app.id && !eventsOf(t).some((e) => TERMINAL.includes(e.kind))).length;

// ---- faults -------------------------------------------------------------------------------

const counts = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
const faultsEnd = Date.now() + opts['faults-for-s'] * 1000;
const due = () => Date.now() < faultsEnd || KINDS.some((k) => counts[k] < opts['min-each']);
const inFlight = () => apps.flatMap((a) => [...a.inFlight]);

let stalled = false;
while (due() && !stalled) {
  for (const kind of shuffled(KINDS)) {
    if (!due()) break;
    // Keep every PC busy: a fault with no step in flight proves nothing.
    for (const app of apps) if (unfinished(app) < 2) await submit(app);
    await sleep(random() * 800);
    try {
      await until(async () => inFlight().length > 0, 30_000, 'a step in flight');
    } catch {
      // With every PC fed runs, no step for 30 s means the system stopped making progress.
      problems.push(`fault ${kind}: no step was in flight within 30 s; no more faults`);
      stalled = true;
      break;
    }
    const landed = inFlight();
    counts[kind]++;
    if (kind === 'device') {
      const app = shuffled(apps.filter((a) => a.inFlight.size > 0))[0];
      const mid = [...app.inFlight];
      await kill9(app.child);
      await sleep(300 + random() * 1200);
      await startApp(app).catch((err) => problems.push(`PC app restart: ${(err as Error).message}`));
      log(`kill -9 PC app ${app.id.slice(0, 8)} in the middle of ${mid.join(', ')}, restarted`);
    } else if (kind === 'reset') {
      const n = links.size;
      resetLinks();
      log(`reset ${n} connection(s) of the PC apps with ${landed.length} step(s) in flight`);
    } else if (kind === 'blackhole') {
      blackholed = true;
      const ms = 2000 + random() * 6000;
      await sleep(ms);
      resetLinks();
      blackholed = false;
      log(`blackholed the PC apps' network for ${Math.round(ms)} ms with ${landed.length} step(s) in flight, then reset`);
    } else if (kind === 'postgres') {
      await pg.kill9();
      await sleep(1000 + random() * 2000);
      await pg.start();
      log(`kill -9 PostgreSQL with ${landed.length} step(s) in flight, started again`);
    } else {
      await kill9(procs[kind]);
      await sleep(500 + random() * 1500);
      if (kind === 'temporal') startTemporal();
      else startNode(kind);
      log(`kill -9 ${kind} with ${landed.length} step(s) in flight, restarted`);
    }
    await until(apiUp, 60_000, 'api ready after a fault').catch((err) => problems.push(String(err)));
  }
}

// ---- settle --------------------------------------------------------------------------------

const temporal = new Client({ connection: await Connection.connect({ address }) });
const finished = async () => {
  const rows = await orm.em.fork().find(Task, { id: { $in: tasks } }, { fields: ['id', 'status'] });
  return rows.length === tasks.length && rows.every((t) => ['completed', 'failed', 'cancelled'].includes(t.status));
};
await until(finished, opts['settle-s'] * 1000, 'all runs finished').catch((err) => problems.push(String(err)));
await sleep(1000); // the monitor's last frames

// ---- the oracle ------------------------------------------------------------------------------

// Effects, from the PC apps' journals: (task, node, visit) -> how many times it was performed.
const performed = new Map<string, number>();
for (const app of apps) {
  if (!existsSync(app.journal)) continue;
  for (const line of readFileSync(app.journal, 'utf8').split('\n').filter(Boolean)) {
    const e = JSON.parse(line) as { task: string; node: string; visit: number };
    const id = `${e.task}/${e.node}/${e.visit}`;
    performed.set(id, (performed.get(id) ?? 0) + 1);
  }
}
let twice = 0;
let missing = 0;
let eventsWrong = 0;
let fieldsWrong = 0;
let steps = 0;

/** The kinds a run of the definition must produce (progress aside), as a pattern over "kind kind ...". */
const WAIT = '(run\\.pending (run\\.started )?)*';
const STEP = `((step\\.dispatched ${WAIT})+step\\.failed ${WAIT})*(step\\.dispatched ${WAIT})+step\\.completed `;
const COMPLETED_RUN = new RegExp(`^${WAIT}run\\.started ${WAIT}(${STEP}){${STEPS.length}}run\\.completed $`);

/** JSON with object keys sorted: jsonb keeps its own key order, which is not a difference. */
const canonical = (v: unknown): string => {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v ?? null);
};
const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);
const rows = await orm.em.fork().find(Task, { id: { $in: tasks } });
for (const t of rows) {
  const handle = temporal.workflow.getHandle(workflowIdForTask(t.id));
  const result = await handle.result().catch((err) => ({ status: 'error', outputs: {}, error: String(err) })) as TaskRunResult;
  if (result.status !== 'completed') problems.push(`task ${t.id} ended ${result.status} (${JSON.stringify(result.error)})`);

  // effects: a completed run performed each node once; any run, none twice
  for (const node of STEPS) {
    const n = performed.get(`${t.id}/${node}/1`) ?? 0;
    if (n > 1) { twice++; problems.push(`effect twice: task ${t.id} node ${node} performed ${n} times`); }
    if (result.status === 'completed' && n === 0) { missing++; problems.push(`effect missing: task ${t.id} node ${node}`); }
  }

  // events seen by the monitor
  const seen = eventsOf(t.id).filter((e) => e.seq !== undefined);
  const seqs = seen.map((e) => e.seq!);
  const kinds = `${seen.map((e) => e.kind).join(' ')} `;
  if (seqs.join(',') !== seqs.map((_, i) => i + 1).join(',')) { eventsWrong++; problems.push(`events: task ${t.id} monitor saw seqs ${seqs.join(',')}`); }
  else if (result.status === 'completed' && !COMPLETED_RUN.test(kinds)) { eventsWrong++; problems.push(`events: task ${t.id} out of order or missing: ${kinds}`); }

  // the mirror against Temporal, field by field
  const state = await handle.query(stateQuery) as RunState;
  const differ = (what: string, mirror: unknown, run: unknown) => {
    if (same(mirror, run)) return;
    fieldsWrong++;
    problems.push(`mirror: task ${t.id} ${what}: PostgreSQL ${canonical(mirror)} but Temporal ${canonical(run)}`);
  };
  differ('status', t.status, result.status);
  differ('result', result.status === 'completed' ? t.result : null, result.status === 'completed' ? result.outputs : null);
  differ('error', t.error, result.error);
  differ('last_seq', t.lastSeq, state.lastSeq);
  const mirrorSteps = await orm.em.fork().find(TaskStep, { taskId: t.id }, { orderBy: { startedAt: 'asc', attempt: 'asc' } });
  steps += state.steps.length;
  differ('steps', mirrorSteps.map((s) => [s.nodeId, s.attempt, s.key, s.status, s.output ?? null, (s.error as { code?: string } | null)?.code ?? null]),
    state.steps.map((s) => [s.step_id, s.attempt, s.key, s.status, s.output ?? null, s.error?.code ?? null]));
  // History decoded here (scripts/lib/history-events.ts), not through the system's own reader.
  const history = await historyRunEvents(handle);
  for (const p of history.problems) { eventsWrong++; problems.push(`history: task ${t.id} ${p}`); }
  const mirrored = await orm.em.fork().find(TaskEvent, { taskId: t.id }, { orderBy: { seq: 'asc' } });
  differ('events', mirrored.map((e) => [e.seq, e.kind, e.data]), history.events.map((e) => [e.seq, e.kind, e.data]));
}

log(`faults: ${KINDS.map((k) => `${k} ${counts[k]}`).join(', ')}`);
log(`runs: ${rows.filter((t) => t.status === 'completed').length}/${tasks.length} completed; step attempts ${steps}; effects ${[...performed.values()].reduce((a, b) => a + b, 0)}, twice ${twice}, missing ${missing}; events wrong ${eventsWrong}; mirror fields wrong ${fieldsWrong}`);
for (const p of problems) log(`PROBLEM ${p}`);

stopping = true;
for (const monitor of monitors) await monitor.stop();
proxy.close();
resetLinks();
for (const app of apps) await kill9(app.child);
await temporal.connection.close();
for (const k of ['api', 'worker', 'temporal'] as const) if (procs[k]) await stopChild(procs[k]!);
await orm.close();
await pg.stop();
rmSync(dir, { recursive: true, force: true });
log(problems.length ? `FAILED with ${problems.length} problem(s)` : 'all runs correct');
process.stdout.write(`${problems.length ? 0 : 1} passed, ${problems.length ? 1 : 0} failed\n`);
process.exit(problems.length ? 1 : 0);
