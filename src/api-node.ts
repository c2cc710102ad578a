// An API node: Koa REST + the ws gateway + a Temporal worker for the device-step activities
// on `device-steps.<NODE_ID>` (the devices whose sockets this node holds).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createDeviceStepActivities } from '../activities/device-steps.ts';
import { deviceStepQueue } from '../workflows/api.ts';
import type { Config } from './config.ts';
import type { Orm } from './db/orm.ts';
import type { Logger } from './logger.ts';
import { AccessTokens } from './domain/tokens.ts';
import { SessionCache } from './domain/sessions.ts';
import { StepProgressRecorder } from './domain/step-progress.ts';
import { recordingProgress } from './ws/live-bus.ts';
import { createApp } from './http/app.ts';
import { clientOverWorkerConnection } from './temporal/client.ts';
import { DeviceConnections } from './ws/device-connections.ts';
import { Gateway } from './ws/gateway.ts';
import { HistoryStreams } from './ws/history-stream.ts';
import { PgBus } from './ws/pg-bus.ts';
import { UserFeeds } from './ws/user-feed.ts';
import { startApprovalReminders } from './domain/approval-reminders.ts';
import { deliveryQueue, startDispatcher } from './domain/notification-dispatch.ts';
import { startReconciler } from './reconciler.ts';
import { sdkMetricsReader, sdkMetricsUrl } from './telemetry/sdk-metrics.ts';
import { TRACING_OFF, type Tracing } from './telemetry/tracing.ts';
import * as devicesDb from './db/devices.ts';

export interface ApiNodeDeps {
  config: Config;
  logger: Logger;
  orm: Orm;
  temporal: Client;
  workerConnection: NativeConnection;
  tracing?: Tracing;
}

export interface ApiNode {
  url: string;
  port: number;
  server: Server;
  gateway: Gateway;
  streams: HistoryStreams;
  deviceConnections: DeviceConnections;
  stop(): Promise<void>;
}

export async function startApiNode(deps: ApiNodeDeps): Promise<ApiNode> {
  const { config, logger, orm, temporal } = deps;
  const tracing = deps.tracing ?? TRACING_OFF;
  const tokens = new AccessTokens(config.JWT_SECRET, config.ACCESS_TOKEN_TTL_S);
  const deviceConnections = new DeviceConnections();
  // LISTEN/NOTIFY fan-out: live progress and user feeds reach monitors on every node.
  const live = new PgBus(config.DATABASE_URL, config.NODE_ID, logger.child({ component: 'pg-bus' }));
  await live.start();
  const feeds = new UserFeeds(orm, logger.child({ component: 'user-feed' }));
  live.onTaskEvents((n) => feeds.onNotice(n));
  live.onStoredNotification((n) => feeds.onStored(n));
  const streams = new HistoryStreams(temporal, config.TEMPORAL_NAMESPACE, logger.child({ component: 'history' }));
  // Open login sessions, trusted for a moment; revocations reach every node through the bus.
  const sessionCache = new SessionCache(live, config.SESSION_CACHE_TTL_MS);
  const gateway = new Gateway({ config, logger: logger.child({ component: 'ws' }), orm, temporal, tokens, deviceConnections, live, streams, feeds, sessionCache });
  // Over the workers' connection: eager starts of runs and deliveries (src/temporal/client.ts).
  const eagerStarts = clientOverWorkerConnection(deps.workerConnection, config.TEMPORAL_NAMESPACE, tracing);
  const app = createApp({
    config, logger, orm, temporal, eagerStarts, tokens, sockets: gateway, counts: () => gateway.counts, sessionCache,
    tracer: tracing.tracer,
    ...(config.TEMPORAL_METRICS_ADDRESS
      ? { sdkMetrics: sdkMetricsReader(sdkMetricsUrl(config.TEMPORAL_METRICS_ADDRESS), logger.child({ component: 'metrics' })) }
      : {}),
  });

  // The running step's last progress, kept on its task (GET /tasks/:id) besides going live.
  const progress = new StepProgressRecorder(orm, logger.child({ component: 'step-progress' }));
  const worker = await Worker.create({
    connection: deps.workerConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: deviceStepQueue(config.NODE_ID),
    activities: createDeviceStepActivities({ connections: deviceConnections, live: recordingProgress(live, progress), orm, logger: logger.child({ component: 'device-steps' }) }),
    // Device steps mostly wait on sockets: many may be in flight at once.
    maxConcurrentActivityTaskExecutions: 2000,
    ...tracing.workerOptions({ workflows: false }),
    shutdownGraceTime: '10s',
  });
  const workerRun = worker.run();
  const reconciler = startReconciler({ temporal, orm, logger: logger.child({ component: 'reconciler' }) });
  const dispatcher = config.NOTIFY_DISPATCH_MS === 0 ? null : startDispatcher({
    orm, temporal: eagerStarts, eagerStart: true, taskQueue: deliveryQueue(config.TASK_QUEUE), logger: logger.child({ component: 'notification-dispatch' }), intervalMs: config.NOTIFY_DISPATCH_MS,
    retry: { maximumAttempts: config.DELIVERY_MAX_ATTEMPTS, initialIntervalMs: config.DELIVERY_RETRY_INITIAL_MS, maximumIntervalMs: config.DELIVERY_RETRY_MAX_MS },
  });
  // A stored notification is sent at once, not at the next sweep.
  if (dispatcher) live.onOutbox(() => dispatcher.wake());
  const reminders = config.APPROVAL_REMINDER_SWEEP_MS === 0 ? null : startApprovalReminders({
    orm, logger: logger.child({ component: 'approval-reminders' }), leadMs: config.APPROVAL_REMINDER_LEAD_MS, intervalMs: config.APPROVAL_REMINDER_SWEEP_MS,
  });

  const server = createServer(app.callback());
  server.keepAliveTimeout = 65_000;
  gateway.attach(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = config.PUBLIC_URL ?? `http://${config.HOST}:${port}`;
  logger.info({ url, nodeId: config.NODE_ID }, 'API node listening');

  let stopping: Promise<void> | undefined;
  return {
    url, port, server, gateway, streams, deviceConnections,
    stop() {
      stopping ??= (async () => {
        reconciler.stop();
        await reminders?.stop();
        await dispatcher?.stop();
        // First say the devices here are offline: runs whose step fails below then wait for
        // the device to reconnect elsewhere instead of dispatching again to this node.
        await devicesDb.releaseNode(orm.em.fork(), config.NODE_ID);
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        await gateway.close();
        streams.close();
        server.closeAllConnections();
        await closed;
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await workerRun.catch((err) => logger.error({ err }, 'device-step worker failed'));
        progress.stop();
        await live.close();
      })();
      return stopping;
    },
  };
}
