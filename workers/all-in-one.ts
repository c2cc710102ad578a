// `npm start`: the whole system on embedded defaults. Spawns the Temporal dev server (unless
// TEMPORAL_ADDRESS is set), creates and migrates the database, then runs an API node and a
// task worker in this process. Ctrl-C stops everything.
import { resolve } from 'node:path';
import { bootConfig, onShutdown } from '../src/boot.ts';
import { installTemporalRuntime } from '../src/temporal/runtime.ts';
import { startTracing } from '../src/telemetry/tracing.ts';
import { ensureDatabase, migrate, openOrm } from '../src/db/orm.ts';
import { startDevServer, type DevServer } from '../src/temporal/dev-server.ts';
import { connectClient, connectWorker } from '../src/temporal/client.ts';
import { startApiNode } from '../src/api-node.ts';
import { startTaskWorker } from '../src/task-worker.ts';

const { config, logger } = bootConfig();
installTemporalRuntime(logger, { metricsAddress: config.TEMPORAL_METRICS_ADDRESS });
const tracing = startTracing(config);
const root = resolve(import.meta.dirname, '..');

let devServer: DevServer | undefined;
let address = config.TEMPORAL_ADDRESS;
let uiUrl = config.TEMPORAL_UI_URL;
if (!address) {
  logger.info('starting the Temporal dev server (.data/temporal.db)');
  devServer = await startDevServer({
    dbFile: resolve(root, '.data', 'temporal.db'),
    port: config.TEMPORAL_PORT,
    uiPort: config.TEMPORAL_UI_PORT,
    namespace: config.TEMPORAL_NAMESPACE,
  });
  address = devServer.address;
  uiUrl = devServer.uiUrl;
}
const cfg = { ...config, TEMPORAL_UI_URL: uiUrl };

await ensureDatabase(cfg.DATABASE_URL);
const orm = await openOrm(cfg.DATABASE_URL);
const applied = await migrate(orm);
if (applied.length) logger.info({ applied }, 'migrations applied');

const temporal = await connectClient(address, cfg.TEMPORAL_NAMESPACE, tracing);
const workerConnection = await connectWorker(address);
const node = await startApiNode({ config: cfg, logger, orm, temporal, workerConnection, tracing });
const worker = await startTaskWorker({ config: cfg, logger, orm, connection: workerConnection, temporal, tracing });

process.stdout.write(`
  Jarvis Orchestrator is running
  API          ${node.url}/api/v1
  API docs     ${node.url}/docs
  Monitor page ${node.url}/monitor
  WebSocket    ${node.url.replace(/^http/, 'ws')}/ws
  Temporal UI  ${uiUrl}
  Temporal     ${address} (namespace ${cfg.TEMPORAL_NAMESPACE})
  Press Ctrl-C to stop.
`);

onShutdown(logger, async () => {
  await node.stop();
  await worker.stop();
  await workerConnection.close();
  await temporal.connection.close();
  await orm.close();
  await tracing.shutdown();
  await devServer?.stop();
});
