// The system under test of `npm run bench`, in a process of its own (forked by run.ts with
// --expose-gc): our API node and task worker, and next to them the bare baselines on the same
// Temporal dev server and PostgreSQL: a bare Temporal worker (bare-workflows.ts on its own task
// queue, the task worker's settings), a bare koa app (one pg query by id) and a bare ws server
// (idle sockets, fan-out, notices to the driver, and the bare devices the driver plays).
// The driver talks to it over the IPC channel (lib.ts: ServerCommands).
import { createServer, type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { MessageChannel, type MessagePort, type Worker as ThreadWorker, type WorkerOptions as ThreadOptions } from 'node:worker_threads';
import type { AddressInfo } from 'node:net';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { writeHeapSnapshot } from 'node:v8';
import { randomBytes } from 'node:crypto';
import Koa from 'koa';
import Router from '@koa/router';
import pg from 'pg';
import { WebSocketServer, type WebSocket } from 'ws';
import webpush from 'web-push';
import { Worker } from '@temporalio/worker';
import { Context } from '@temporalio/activity';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { openOrm } from '../../src/db/orm.ts';
import { connectClient, connectWorker } from '../../src/temporal/client.ts';
import { installTemporalRuntime } from '../../src/temporal/runtime.ts';
import { startApiNode } from '../../src/api-node.ts';
import { startTaskWorker } from '../../src/task-worker.ts';
import type { BareActivities } from './bare-workflows.ts';
import {
  summarizeProfile, type CommandMessage, type CpuProfile, type ServerCommands, type ServerReady, type ServerSetup,
} from './lib.ts';

// The Temporal workers run workflows in worker threads (one per worker), whose heaps are not in
// process.memoryUsage(): start those threads through thread-probe.ts, which can collect and
// measure its own heap when asked on a port of ours.
const PROBE = new URL('./thread-probe.ts', import.meta.url).pathname;
const threadsModule = createRequire(import.meta.url)('node:worker_threads') as { Worker: typeof ThreadWorker };
const probes = new Set<MessagePort>();
const BaseWorker = threadsModule.Worker;
threadsModule.Worker = class ProbedWorker extends BaseWorker {
  constructor(filename: string | URL, options?: ThreadOptions) {
    const channel = String(filename).includes('workflow-worker-thread') ? new MessageChannel() : null;
    super(channel ? PROBE : filename, channel
      ? { ...options, workerData: { benchPort: channel.port2, benchTarget: String(filename) }, transferList: [...(options?.transferList ?? []), channel.port2] }
      : options);
    if (channel) {
      const port = channel.port1;
      port.unref();
      probes.add(port);
      this.once('exit', () => probes.delete(port));
    }
  }
};

function measureThread(port: MessagePort, snapshot?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('workflow thread did not answer')), 10_000);
    port.once('message', (m: { used: number; external: number; collected: boolean }) => {
      clearTimeout(timer);
      if (!m.collected) reject(new Error('no gc() in the workflow thread'));
      else resolve(m.used + m.external);
    });
    port.postMessage(snapshot ? { snapshot } : 'measure');
  });
}

const setup = JSON.parse(process.env.BENCH_SETUP ?? '{}') as ServerSetup;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run the bench server with --expose-gc');

// As the production setup runs it (Dockerfile, docker-compose.yml): NODE_ENV=production (no
// response-schema check; server-process.ts sets it in the environment too, where route.ts reads
// it at import), the default log level with the access log on, JSON lines to a file (the
// container's stdout), a secret of its own. What the bench's load needs beyond the defaults
// comes from the driver (setup.settings) and its report says so.
const config = loadConfig({
  NODE_ENV: 'production',
  HOST: '127.0.0.1',
  PORT: '0',
  DATABASE_URL: setup.databaseUrl,
  TEMPORAL_ADDRESS: setup.temporalAddress,
  TASK_QUEUE: setup.taskQueue,
  NODE_ID: setup.nodeId,
  ...(setup.logLevel ? { LOG_LEVEL: setup.logLevel } : {}),
  DATA_DIR: setup.dataDir,
  JWT_SECRET: randomBytes(32).toString('hex'),
  // Production turns Web Push off without keys of the operator's: F7 measures it, so it gets a pair.
  ...vapidSettings(),
  ...setup.settings,
});

function vapidSettings(): Record<string, string> {
  const keys = webpush.generateVAPIDKeys();
  return { VAPID_PUBLIC_KEY: keys.publicKey, VAPID_PRIVATE_KEY: keys.privateKey };
}
const logger = createLogger(config.LOG_LEVEL);
installTemporalRuntime(logger);
const orm = await openOrm(config.DATABASE_URL);
const temporal = await connectClient(setup.temporalAddress, config.TEMPORAL_NAMESPACE);
const workerConnection = await connectWorker(setup.temporalAddress);
const node = await startApiNode({ config, logger, orm, temporal, workerConnection });
const taskWorker = await startTaskWorker({
  config, logger, orm, connection: workerConnection, temporal, workflowBundle: { codePath: setup.workflowBundle },
});

// ---- bare baselines ---------------------------------------------------------------------------

const bareSockets = new Set<WebSocket>();
const fanoutSockets = new Set<WebSocket>();
let notifySocket: WebSocket | null = null;
let fanoutFrames: string[] = [];
/** F1/F2's bare devices by number, each with the steps it has not answered yet, by id. */
type Waiting = Map<number, { resolve: (answer: unknown) => void; reject: (err: Error) => void }>;
const bareDevices = new Map<number, { ws: WebSocket; waiting: Waiting }>();
let stepId = 0;

const bareActivities: BareActivities = {
  async echo(input) {
    return { echo: input };
  },
  async deviceStep({ device, step }) {
    const d = bareDevices.get(device);
    if (!d) throw new Error(`bare device ${device} is not connected`);
    const id = ++stepId;
    return new Promise((resolve, reject) => {
      d.waiting.set(id, { resolve, reject });
      d.ws.send(JSON.stringify({ id, step }));
    });
  },
  async notify(n) {
    notifySocket?.send(String(n));
  },
  async hold(n) {
    const ctx = Context.current();
    notifySocket?.send(String(n));
    const beat = setInterval(() => ctx.heartbeat(), 2000);
    try {
      await ctx.cancelled;
    } finally {
      clearInterval(beat);
    }
  },
};
// The task worker's settings (src/task-worker.ts): defaults, the same grace time; and as many
// activity slots as the API node's device-step worker (src/api-node.ts), whose part the bare
// activities play (F6 parks 200 runs in a held activity: the default 100 would hold half back).
const bareWorker = await Worker.create({
  connection: workerConnection,
  namespace: config.TEMPORAL_NAMESPACE,
  taskQueue: setup.bareQueue,
  workflowBundle: { codePath: setup.bareBundle },
  activities: bareActivities,
  maxConcurrentActivityTaskExecutions: 2000,
  shutdownGraceTime: '10s',
});
const bareWorkerRun = bareWorker.run();

// Same pool size as the ORM's (src/db/orm.ts: max 10).
const pgPool = new pg.Pool({ connectionString: setup.databaseUrl, max: 10 });
const bareApp = new Koa();
const bareRouter = new Router();
bareRouter.get('/tasks/:id', async (ctx) => {
  const res = await pgPool.query('select * from tasks where id = $1', [ctx.params.id]);
  if (!res.rowCount) {
    ctx.status = 404;
    return;
  }
  ctx.body = res.rows[0];
});
bareApp.use(bareRouter.routes());
const bareServer = createServer(bareApp.callback());
const wss = new WebSocketServer({ noServer: true });
bareServer.on('upgrade', (req: IncomingMessage, socket, head) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname;
  if (path !== '/idle' && path !== '/fanout' && path !== '/notify' && path !== '/device') {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    bareSockets.add(ws);
    ws.on('close', () => bareSockets.delete(ws));
    ws.on('error', () => undefined);
    if (path === '/notify') notifySocket = ws;
    // F1/F2 baseline: device n answers each step as {id, output}.
    if (path === '/device') {
      const n = Number(url.searchParams.get('n'));
      const waiting: Waiting = new Map();
      bareDevices.set(n, { ws, waiting });
      ws.on('message', (data) => {
        const { id, output } = JSON.parse(String(data)) as { id: number; output: unknown };
        waiting.get(id)?.resolve(output);
        waiting.delete(id);
      });
      ws.on('close', () => {
        if (bareDevices.get(n)?.ws === ws) bareDevices.delete(n);
        for (const w of waiting.values()) w.reject(new Error(`bare device ${n} went away`));
      });
    }
    // F4 baseline: every message is a "subscribe": answer it with the run's frames.
    if (path === '/fanout') {
      fanoutSockets.add(ws);
      ws.on('close', () => fanoutSockets.delete(ws));
      ws.on('message', () => { for (const f of fanoutFrames) ws.send(f); });
    }
  });
});
await new Promise<void>((r) => bareServer.listen(0, '127.0.0.1', () => r()));
const bareUrl = `http://127.0.0.1:${(bareServer.address() as AddressInfo).port}`;

// ---- commands from the driver -----------------------------------------------------------------

let profiler: Session | null = null;

type Handlers = { [K in keyof ServerCommands]: (args: ServerCommands[K]['args']) => Promise<ServerCommands[K]['result']> };
const handlers: Handlers = {
  async memory() {
    // Several passes: weak references and finalizers free more on the next one.
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    const m = process.memoryUsage();
    let threadHeap = 0;
    for (const port of probes) threadHeap += await measureThread(port);
    return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss, threadHeap, threads: probes.size };
  },
  async heapSnapshots({ label }) {
    // BENCH_HEAP_DIR: heap snapshots of the main thread and of each workflow thread, after GCs.
    const dir = process.env.BENCH_HEAP_DIR;
    if (!dir) return [];
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    const files = [writeHeapSnapshot(`${dir}/${label}-main.heapsnapshot`)];
    let n = 0;
    for (const port of probes) {
      const file = `${dir}/${label}-thread${n++}.heapsnapshot`;
      await measureThread(port, file);
      files.push(file);
    }
    return files;
  },
  async handles() {
    const byType: Record<string, number> = {};
    for (const t of process.getActiveResourcesInfo()) byType[t] = (byType[t] ?? 0) + 1;
    return byType;
  },
  async counts() {
    const c = node.gateway.counts;
    return { devices: c.devices, monitors: c.monitors, bareSockets: bareSockets.size, streams: node.streams.size };
  },
  async polls({ taskId }) {
    return { polls: node.streams.stream(taskId)?.polls ?? null, streams: node.streams.size };
  },
  async bareFrames({ frames }) {
    fanoutFrames = frames;
    return frames.length;
  },
  async bareFanLive({ frames, gapsMs }) {
    const sentAt: number[] = [];
    for (let i = 0; i < frames.length; i++) {
      if (gapsMs[i] > 0) await new Promise((r) => setTimeout(r, gapsMs[i]));
      sentAt.push(performance.timeOrigin + performance.now());
      for (const ws of fanoutSockets) ws.send(frames[i]);
    }
    return sentAt;
  },
  async profileStart() {
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
    await profiler.post('Profiler.start');
    return true;
  },
  async profileStop({ top }) {
    if (!profiler) throw new Error('no profile running');
    const { profile } = await profiler.post('Profiler.stop');
    profiler.disconnect();
    profiler = null;
    // The raw profile, for a closer look (Chrome DevTools, speedscope): BENCH_PROFILE_DIR=<dir>.
    if (process.env.BENCH_PROFILE_DIR) {
      writeFileSync(`${process.env.BENCH_PROFILE_DIR}/server-${Date.now()}.cpuprofile`, JSON.stringify(profile));
    }
    return summarizeProfile(profile as unknown as CpuProfile, top);
  },
  async stop() {
    setImmediate(() => void shutdown(0));
    return true;
  },
};

let stopping = false;
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const hard = setTimeout(() => process.exit(code), 15_000);
  hard.unref();
  try {
    for (const ws of bareSockets) ws.terminate();
    await new Promise<void>((r) => bareServer.close(() => r()));
    await pgPool.end();
    await node.stop();
    await taskWorker.stop();
    if (bareWorker.getState() === 'RUNNING') bareWorker.shutdown();
    await bareWorkerRun.catch(() => undefined);
    await workerConnection.close();
    await temporal.connection.close();
    await orm.close();
  } catch (err) {
    logger.error({ err }, 'bench server stop failed');
  }
  process.exit(code);
}

process.on('message', (raw) => {
  const msg = raw as CommandMessage;
  const fn = handlers[msg.cmd] as (args: unknown) => Promise<unknown>;
  if (!fn) {
    process.send?.({ id: msg.id, ok: false, error: `unknown command ${msg.cmd}` });
    return;
  }
  fn(msg.args).then(
    (result) => process.send?.({ id: msg.id, ok: true, result }),
    (err: Error) => process.send?.({ id: msg.id, ok: false, error: err?.stack ?? String(err) }),
  );
});
// The driver went away (crashed, killed): do not linger.
process.on('disconnect', () => void shutdown(1));
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));

const ready: ServerReady = { type: 'ready', apiUrl: node.url, bareUrl };
process.send?.(ready);
