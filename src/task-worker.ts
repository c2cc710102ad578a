// A task worker: runs the workflows and the persistence activities on the task queue.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Client } from '@temporalio/client';
import { bundleWorkflowCode, Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { createPersistenceActivities } from '../activities/persistence.ts';
import { createDeliveryActivities } from '../activities/notification-delivery.ts';
import { vapidKeysOf } from './domain/web-push.ts';
import { fcmSettingsOf } from './domain/fcm.ts';
import { accountLimitsOf, type Config } from './config.ts';
import { ensureRetentionSchedule } from './domain/artifact-retention.ts';
import type { Orm } from './db/orm.ts';
import type { Logger } from './logger.ts';
import { TRACING_OFF, WORKFLOW_TRACING_MODULE, type Tracing } from './telemetry/tracing.ts';
import { deliveryQueue } from './domain/notification-dispatch.ts';

export const WORKFLOWS_PATH = new URL('../workflows/index.ts', import.meta.url).pathname;

/**
 * The SDK runs every workflow in one reused V8 context, but evaluates the workflow modules again
 * for each run (its own module cache), so each run held its own copy of every function and
 * constant of workflows/ (a third of a parked run's memory in its workflow thread:
 * docs/benchmarks.md, F6). Preloaded modules are evaluated once and shared: safe because no module
 * of workflows/ keeps state at module scope (constants, signal and query definitions, functions;
 * a run's state lives in its own objects). A module that keeps state at module scope must not be
 * in workflows/ (test/unit/workflow-modules.test.ts).
 */
export const WORKFLOW_PRELOAD_MODULES = readdirSync(dirname(WORKFLOWS_PATH))
  .filter((f) => f.endsWith('.ts'))
  .sort()
  .map((f) => join(dirname(WORKFLOWS_PATH), f));

/** How every bundle of workflows/ is built (the task worker's own, tests', the bench's, the replay's). */
export const WORKFLOW_BUNDLE_OPTIONS = { workflowsPath: WORKFLOWS_PATH, preloadModules: WORKFLOW_PRELOAD_MODULES };

export interface TaskWorkerDeps {
  config: Config;
  logger: Logger;
  orm: Orm;
  connection: NativeConnection;
  /** Client for what activities start or signal (the device lanes). */
  temporal: Client;
  /**
   * A pre-built bundle (tests build it once); default: bundle workflows/ at start. With tracing
   * on, a pre-built bundle must include WORKFLOW_TRACING_MODULE (`workflowInterceptorModules`).
   */
  workflowBundle?: WorkerOptions['workflowBundle'];
  tracing?: Tracing;
}

export interface TaskWorker {
  worker: Worker;
  stop(): Promise<void>;
}

export async function startTaskWorker(deps: TaskWorkerDeps): Promise<TaskWorker> {
  const { config, logger, orm } = deps;
  const tracing = deps.tracing ?? TRACING_OFF;
  // One bundle for both workers below (bundling is seconds of CPU at start).
  const workflowBundle = deps.workflowBundle ?? {
    code: (await bundleWorkflowCode({
      ...WORKFLOW_BUNDLE_OPTIONS,
      ...(tracing.enabled ? { workflowInterceptorModules: [WORKFLOW_TRACING_MODULE] } : {}),
    })).code,
  };
  const shared: Omit<WorkerOptions, 'taskQueue'> = {
    connection: deps.connection,
    namespace: config.TEMPORAL_NAMESPACE,
    workflowBundle,
    ...tracing.workerOptions({ workflows: true }),
    shutdownGraceTime: '10s',
  };
  const worker = await Worker.create({
    ...shared,
    taskQueue: config.TASK_QUEUE,
    activities: createPersistenceActivities({
      orm,
      temporal: deps.temporal,
      taskQueue: config.TASK_QUEUE,
      presenceStaleMs: config.WS_HEARTBEAT_MS * 3,
      offlineTimeoutMs: config.DEVICE_OFFLINE_TIMEOUT_MS,
      limits: accountLimitsOf(config),
      artifactRetentionMs: config.ARTIFACT_RETENTION_DAYS * 24 * 3600 * 1000,
    }),
  });
  // Notification deliveries on a queue and worker of their own: a delivery's request runs inside
  // its workflow task (a local activity), so receivers that hang or fail hold this worker's
  // workflow task slots, never the runs' (docs/reliability.md, hostile tenant). Same connection,
  // so the dispatcher's eager starts still reach it in a process that holds both.
  const deliveries = await Worker.create({
    ...shared,
    taskQueue: deliveryQueue(config.TASK_QUEUE),
    // A delivery's slot is mostly a wait on its receiver's answer, so far more of them than the
    // runs' default; each account holds at most DELIVERY_MAX_IN_FLIGHT_PER_ACCOUNT at once.
    maxConcurrentWorkflowTaskExecutions: config.DELIVERY_WORKER_SLOTS,
    maxConcurrentLocalActivityExecutions: config.DELIVERY_WORKER_SLOTS,
    activities: createDeliveryActivities({
      orm, timeoutMs: config.WEBHOOK_TIMEOUT_MS, allowPrivateTargets: config.WEBHOOK_ALLOW_PRIVATE_TARGETS, vapid: vapidKeysOf(config),
      fcm: fcmSettingsOf(config), perAccountInFlight: config.DELIVERY_MAX_IN_FLIGHT_PER_ACCOUNT,
    }),
  });
  await ensureRetentionSchedule(deps.temporal, config.TASK_QUEUE).catch((err) =>
    logger.error({ err }, 'could not create the artifact retention schedule; artifacts are kept until it exists'));
  const runs = [worker.run(), deliveries.run()];
  logger.info({ taskQueue: config.TASK_QUEUE, deliveryQueue: deliveryQueue(config.TASK_QUEUE) }, 'task worker running');
  let stopping: Promise<void> | undefined;
  return {
    worker,
    stop() {
      stopping ??= (async () => {
        for (const w of [worker, deliveries]) if (w.getState() === 'RUNNING') w.shutdown();
        await Promise.all(runs.map((r) => r.catch((err) => logger.error({ err }, 'task worker failed'))));
      })();
      return stopping;
    },
  };
}
