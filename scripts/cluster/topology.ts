// The production topology on one machine: the Temporal server on PostgreSQL and its UI, two API
// nodes, two task workers, HAProxy in front. `npm run cluster` and the cluster tests start it
// through startCluster; docker-compose.yml describes the same services (test/unit/compose.test.ts).
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { ensureDatabase } from '../../src/db/orm.ts';
import { freePort } from '../../src/temporal/dev-server.ts';
import { binaries, missingBinaries } from './binaries.ts';
import { Processes, type ProcessSpec } from './processes.ts';
import { applySchemas, dropDatabases, prepareNamespace, temporalEnv, temporalPortOffsets, type TemporalDatabases } from './temporal.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
/** The project's Node 24 (the `node` devDependency): it runs the TypeScript entry points. */
const NODE = join(ROOT, 'node_modules', '.bin', 'node');

/** The services, in start order; docker-compose.yml has one service for each (plus postgres and schema setup). */
export const SERVICES = ['temporal', 'temporal-ui', 'api-1', 'api-2', 'worker-1', 'worker-2', 'haproxy'] as const;
export type ServiceName = (typeof SERVICES)[number];
/**
 * Stop order: HAProxy first (no new traffic), then the nodes together (none needs another to
 * shut down, and a task worker can take seconds to drain its polls), the servers last.
 */
const STOP_WAVES: ServiceName[][] = [['haproxy'], ['api-1', 'api-2', 'worker-1', 'worker-2'], ['temporal-ui'], ['temporal']];

export interface ClusterOptions {
  /** PostgreSQL server for every database, e.g. postgres://postgres@127.0.0.1:5432/postgres */
  pgUrl: string;
  /** Database names; a test passes private ones. */
  appDatabase: string;
  temporal: Omit<TemporalDatabases, 'adminUrl'>;
  /** Where clients connect (HAProxy); 0: a free port. */
  port: number;
  uiPort: number;
  /** Temporal frontend gRPC port; 0: a free range. */
  temporalPort: number;
  /**
   * Where logs live, and each node's own DATA_DIR (<dataDir>/<service>): nodes share nothing on
   * disk, as on separate machines, so whatever they must share goes through PostgreSQL.
   */
  dataDir: string;
  jwtSecret: string;
  env?: Record<string, string>;
}

export interface Cluster {
  url: string;
  wsUrl: string;
  uiUrl: string;
  temporalAddress: string;
  /** Each API node's own URL (behind HAProxy). */
  nodes: string[];
  databaseUrl: string;
  processes: Processes;
  /** kill -9 of one service. */
  kill(name: ServiceName): Promise<void>;
  /** Starts a killed service again and waits until it is ready. */
  restart(name: ServiceName): Promise<void>;
  stop(opts?: { dropDatabases?: boolean }): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

/**
 * A frontend port whose whole offset range (see temporal-config/server/jarvis.yaml) is free.
 * Below 32,000: the server records membership ports in a smallint column (at most 32,767), and
 * the range also stays clear of Linux's ephemeral ports (from 32,768).
 */
async function freeTemporalBase(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await Promise.all(temporalPortOffsets.map((o) => portFree(base + o)));
    if (free.every(Boolean)) return base;
  }
  throw new Error('no free port range for the Temporal server');
}

async function waitFor(what: string, check: () => Promise<boolean>, alive: () => boolean, timeoutMs: number, logTail: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    if (!alive()) throw new Error(`${what} exited before it was ready:\n${logTail()}\n`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms`);
}

const httpOk = (url: string) => async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const missing = missingBinaries();
  if (missing.length) throw new Error(`missing ${missing.join(', ')}: run "node scripts/setup.ts --cluster" first`);
  const temporalPort = opts.temporalPort || await freeTemporalBase();
  const [port, uiPort, api1, api2] = [
    opts.port || await freePort(), opts.uiPort || await freePort(), await freePort(), await freePort(),
  ];
  const temporalAddress = `127.0.0.1:${temporalPort}`;
  const db: TemporalDatabases = { adminUrl: opts.pgUrl, ...opts.temporal };
  const appUrl = new URL(opts.pgUrl);
  appUrl.pathname = `/${opts.appDatabase}`;
  const databaseUrl = appUrl.toString();
  const url = `http://127.0.0.1:${port}`;
  const uiUrl = `http://127.0.0.1:${uiPort}`;
  const processes = new Processes(join(opts.dataDir, 'logs'));

  const app = (extra: Record<string, string>): Record<string, string> => ({
    NODE_ENV: 'production',
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_UI_URL: uiUrl,
    JWT_SECRET: opts.jwtSecret,
    PUBLIC_URL: url,
    TRUST_PROXY: 'true',
    LOG_LEVEL: 'info',
    ...opts.env,
    ...extra,
  });
  const specs: Record<ServiceName, ProcessSpec> = {
    temporal: {
      name: 'temporal', command: binaries.server, cwd: ROOT,
      args: ['--root', ROOT, '--config', 'temporal-config/server', '--env', 'jarvis', '--allow-no-auth', 'start'],
      env: temporalEnv(db, temporalPort),
    },
    'temporal-ui': {
      name: 'temporal-ui', command: binaries.ui, cwd: ROOT,
      args: ['--root', ROOT, '--config', 'temporal-config/ui', '--env', 'jarvis', 'start'],
      env: { TEMPORAL_ADDRESS: temporalAddress, TEMPORAL_UI_PORT: String(uiPort), TEMPORAL_CORS_ORIGIN: url },
    },
    'api-1': {
      name: 'api-1', command: NODE, cwd: ROOT, args: ['workers/api.ts'],
      // Only the first node migrates; the others start after it is healthy.
      env: app({ PORT: String(api1), NODE_ID: 'api-1', MIGRATE_ON_BOOT: 'true', DATA_DIR: join(opts.dataDir, 'api-1') }),
    },
    'api-2': { name: 'api-2', command: NODE, cwd: ROOT, args: ['workers/api.ts'], env: app({ PORT: String(api2), NODE_ID: 'api-2', DATA_DIR: join(opts.dataDir, 'api-2') }) },
    'worker-1': { name: 'worker-1', command: NODE, cwd: ROOT, args: ['workers/task-worker.ts'], env: app({ DATA_DIR: join(opts.dataDir, 'worker-1') }) },
    'worker-2': { name: 'worker-2', command: NODE, cwd: ROOT, args: ['workers/task-worker.ts'], env: app({ DATA_DIR: join(opts.dataDir, 'worker-2') }) },
    haproxy: {
      name: 'haproxy', command: binaries.haproxy, cwd: ROOT,
      args: ['-db', '-f', 'scripts/cluster/haproxy.cfg'],
      env: { JARVIS_LISTEN: `127.0.0.1:${port}`, JARVIS_API_1: `127.0.0.1:${api1}`, JARVIS_API_2: `127.0.0.1:${api2}` },
    },
  };
  const alive = (name: ServiceName) => () => processes.running(name);
  /** Resolves once the service answers 200 at `url`; fails with its last log lines if it exits. */
  const serving = (name: ServiceName, url: string, timeoutMs: number) =>
    waitFor(name, httpOk(url), alive(name), timeoutMs, () => processes.logTail(name));
  const exited = (name: ServiceName) => new Error(`${name} exited before it was ready:\n${processes.logTail(name)}\n`);
  /** A worker has no port: it is ready when its process has stayed up through its connect. */
  const stayingUp = async (name: ServiceName) => {
    await new Promise((r) => setTimeout(r, 500));
    if (!processes.running(name)) throw exited(name);
  };
  /** Starts a service and resolves once it does its job. */
  const ready: Record<ServiceName, () => Promise<void>> = {
    temporal: () => prepareNamespace(temporalAddress, opts.env?.TEMPORAL_NAMESPACE ?? 'default', alive('temporal'))
      .catch((err) => { throw processes.running('temporal') ? err : exited('temporal'); }),
    'temporal-ui': () => serving('temporal-ui', uiUrl, 30_000),
    'api-1': () => serving('api-1', `http://127.0.0.1:${api1}/readyz`, 60_000),
    'api-2': () => serving('api-2', `http://127.0.0.1:${api2}/readyz`, 60_000),
    'worker-1': () => stayingUp('worker-1'),
    'worker-2': () => stayingUp('worker-2'),
    haproxy: () => serving('haproxy', `${url}/healthz`, 15_000),
  };
  const launch = async (name: ServiceName) => {
    await processes.start(specs[name]);
    await ready[name]();
  };

  const cluster: Cluster = {
    url, wsUrl: `${url.replace(/^http/, 'ws')}/ws`, uiUrl, temporalAddress, databaseUrl, processes,
    nodes: [`http://127.0.0.1:${api1}`, `http://127.0.0.1:${api2}`],
    kill: (name) => processes.kill(name, 'SIGKILL'),
    async restart(name) {
      await processes.restart(name);
      await ready[name]();
    },
    async stop(o = {}) {
      await processes.stopAll(10_000, STOP_WAVES);
      if (o.dropDatabases) await dropClusterDatabases(opts);
    },
  };
  try {
    await applySchemas(db);
    await ensureDatabase(databaseUrl);
    await launch('temporal');
    // The UI and the nodes of each kind do not wait for one another.
    await Promise.all([launch('temporal-ui'), launch('api-1')]);
    await launch('api-2');
    await Promise.all([launch('worker-1'), launch('worker-2')]);
    await launch('haproxy');
  } catch (err) {
    await processes.stopAll(2000, STOP_WAVES);
    throw new Error(`${(err as Error).message} (logs in ${processes.logDir})`);
  }
  return cluster;
}

/** Drops the cluster's three databases (a test's private ones once it is done). */
export async function dropClusterDatabases(opts: ClusterOptions): Promise<void> {
  await dropDatabases({ adminUrl: opts.pgUrl, ...opts.temporal });
  await dropDatabases({ adminUrl: opts.pgUrl, main: opts.appDatabase, visibility: opts.appDatabase });
}

/** A fresh private cluster for a test run: own databases, own ports, own data directory. */
export function privateClusterOptions(pgUrl: string, dataRoot: string): ClusterOptions {
  const id = `${process.pid}_${randomUUID().slice(0, 6)}`;
  return {
    pgUrl, appDatabase: `jarvis_cluster_${id}`,
    temporal: { main: `temporal_${id}`, visibility: `temporal_visibility_${id}` },
    port: 0, uiPort: 0, temporalPort: 0, dataDir: join(dataRoot, `cluster-${id}`),
    jwtSecret: randomUUID() + randomUUID(),
  };
}
