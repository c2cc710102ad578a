// Entry point of an API node (REST + ws gateway + device-step worker).
import { bootConfig, onShutdown } from '../src/boot.ts';
import { installTemporalRuntime } from '../src/temporal/runtime.ts';
import { startTracing } from '../src/telemetry/tracing.ts';
import { migrate, openOrm } from '../src/db/orm.ts';
import { connectClient, connectWorker } from '../src/temporal/client.ts';
import { startApiNode } from '../src/api-node.ts';

const { config, logger } = bootConfig();
installTemporalRuntime(logger, { metricsAddress: config.TEMPORAL_METRICS_ADDRESS });
const tracing = startTracing(config);
const address = config.TEMPORAL_ADDRESS ?? `127.0.0.1:${config.TEMPORAL_PORT}`;
const orm = await openOrm(config.DATABASE_URL);
if (config.MIGRATE_ON_BOOT) logger.info({ applied: await migrate(orm) }, 'migrations applied');
const temporal = await connectClient(address, config.TEMPORAL_NAMESPACE, tracing);
const workerConnection = await connectWorker(address);
const node = await startApiNode({ config, logger, orm, temporal, workerConnection, tracing });
onShutdown(logger, async () => {
  await node.stop();
  await workerConnection.close();
  await temporal.connection.close();
  await orm.close();
  await tracing.shutdown();
});
