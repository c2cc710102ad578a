// Entry point of a task worker (workflows + persistence activities on the task queue).
import { bootConfig, onShutdown } from '../src/boot.ts';
import { installTemporalRuntime } from '../src/temporal/runtime.ts';
import { startTracing } from '../src/telemetry/tracing.ts';
import { openOrm } from '../src/db/orm.ts';
import { connectClient, connectWorker } from '../src/temporal/client.ts';
import { startTaskWorker } from '../src/task-worker.ts';

const { config, logger } = bootConfig();
installTemporalRuntime(logger, { metricsAddress: config.TEMPORAL_METRICS_ADDRESS });
const tracing = startTracing(config);
const address = config.TEMPORAL_ADDRESS ?? `127.0.0.1:${config.TEMPORAL_PORT}`;
const orm = await openOrm(config.DATABASE_URL);
const connection = await connectWorker(address);
const temporal = await connectClient(address, config.TEMPORAL_NAMESPACE, tracing);
const worker = await startTaskWorker({ config, logger, orm, connection, temporal, tracing });
onShutdown(logger, async () => {
  await worker.stop();
  await connection.close();
  await temporal.connection.close();
  await orm.close();
  await tracing.shutdown();
});
