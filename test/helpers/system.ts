// Starts the real system in-process for a test file: API node(s) and a task worker against
// the shared Temporal dev server and test database, on a task queue of the file's own.
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { NativeConnection, WorkerOptions } from '@temporalio/worker';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { openOrm, type Orm } from '../../src/db/orm.ts';
import { connectClient, connectWorker } from '../../src/temporal/client.ts';
import { startApiNode, type ApiNode } from '../../src/api-node.ts';
import { startTaskWorker, type TaskWorker } from '../../src/task-worker.ts';
import { installTemporalRuntime } from '../../src/temporal/runtime.ts';
import { startTracing, type Tracing } from '../../src/telemetry/tracing.ts';
import { Api } from './api.ts';
import { testEnv } from './env.ts';

export interface System {
  config: Config;
  orm: Orm;
  temporal: Client;
  workerConnection: NativeConnection;
  nodes: ApiNode[];
  worker: TaskWorker | null;
  tracing: Tracing;
  url: string;
  wsUrl: string;
  api: Api;
  startWorker(): Promise<TaskWorker>;
  stopWorker(): Promise<void>;
  stop(): Promise<void>;
}

export interface SystemOptions {
  nodes?: number;
  env?: Record<string, string>;
  /** Where the system's pino logs go (stdout by default): tests that read the logs. */
  logStream?: { write(line: string): void };
  /** The task worker's workflow bundle (default: the one global-setup built, without tracing). */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

export async function startSystem(opts: SystemOptions = {}): Promise<System> {
  const taskQueue = `task-runs-${randomUUID().slice(0, 8)}`;
  const base = {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: testEnv.databaseUrl,
    TEMPORAL_ADDRESS: testEnv.temporalAddress,
    TEMPORAL_UI_URL: testEnv.temporalUiUrl,
    TASK_QUEUE: taskQueue,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
    WS_HEARTBEAT_MS: '5000',
    // Test files sign up one user and open many monitors of it (200 in bridge.test);
    // ws-limits.test sets its own limit and checks it.
    WS_MAX_MONITORS_PER_USER: '10000',
    // The notification sweeps claim every user's rows in the shared test database: only the
    // files that test them turn them on (deliveries, notifications).
    NOTIFY_DISPATCH_MS: '0',
    APPROVAL_REMINDER_SWEEP_MS: '0',
    ...opts.env,
  };
  const config = loadConfig({ ...base, NODE_ID: `test-${randomUUID().slice(0, 8)}` });
  const logger = createLogger(config.LOG_LEVEL, undefined, opts.logStream);
  installTemporalRuntime(logger, { forwardCore: false, metricsAddress: config.TEMPORAL_METRICS_ADDRESS });
  const tracing = startTracing(config);
  const orm = await openOrm(config.DATABASE_URL);
  const temporal = await connectClient(testEnv.temporalAddress, config.TEMPORAL_NAMESPACE, tracing);
  const workerConnection = await connectWorker(testEnv.temporalAddress);

  const nodes: ApiNode[] = [];
  for (let i = 0; i < (opts.nodes ?? 1); i++) {
    const nodeConfig = i === 0 ? config : loadConfig({ ...base, NODE_ID: `test-${randomUUID().slice(0, 8)}` });
    nodes.push(await startApiNode({ config: nodeConfig, logger, orm, temporal, workerConnection, tracing }));
  }

  const system: System = {
    config, orm, temporal, workerConnection, nodes, worker: null, tracing,
    url: nodes[0].url,
    wsUrl: `${nodes[0].url.replace(/^http/, 'ws')}/ws`,
    api: new Api(nodes[0].url),
    async startWorker() {
      system.worker = await startTaskWorker({
        config, logger, orm, connection: workerConnection, temporal, tracing,
        workflowBundle: opts.workflowBundle ?? { codePath: testEnv.workflowBundle },
      });
      return system.worker;
    },
    async stopWorker() {
      await system.worker?.stop();
      system.worker = null;
    },
    async stop() {
      const t = Date.now();
      const step = (what: string) => process.env.TEST_DEBUG_STOP && console.log(`stop: ${what} at ${Date.now() - t} ms`);
      await system.stopWorker();
      step('task worker');
      for (const n of nodes) await n.stop();
      step('api nodes');
      await workerConnection.close();
      await temporal.connection.close();
      await orm.close();
      await tracing.shutdown();
    },
  };
  await system.startWorker();
  return system;
}
