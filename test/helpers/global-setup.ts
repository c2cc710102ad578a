// Once per `npm test`: a real Temporal dev server on free ports, a fresh PostgreSQL database
// with migrations, and the workflow bundle built once for every test file's task worker.
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { ensureDatabase, migrate, openOrm } from '../../src/db/orm.ts';
import { freePort, startDevServer } from '../../src/temporal/dev-server.ts';
import { WORKFLOW_BUNDLE_OPTIONS } from '../../src/task-worker.ts';
import { TEST_PG_URL } from './env.ts';

export default async function globalSetup(): Promise<void> {
  const dir = resolve(import.meta.dirname, '..', '..', '.data', `test-${process.pid}`);
  mkdirSync(dir, { recursive: true });

  const [port, uiPort] = [await freePort(), await freePort()];
  const server = await startDevServer({ port, uiPort });
  (globalThis as Record<string, unknown>).__JARVIS_TEMPORAL__ = server;

  const url = new URL(TEST_PG_URL);
  url.pathname = `/jarvis_test_${Date.now()}_${process.pid}`;
  const databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  const orm = await openOrm(databaseUrl);
  await migrate(orm);
  await orm.close();

  const { code } = await bundleWorkflowCode({ ...WORKFLOW_BUNDLE_OPTIONS, logger: quietLogger });
  const bundlePath = resolve(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, code);

  process.env.TEST_TEMPORAL_ADDRESS = server.address;
  process.env.TEST_TEMPORAL_UI_URL = server.uiUrl;
  process.env.TEST_DATABASE_URL = databaseUrl;
  process.env.TEST_WORKFLOW_BUNDLE = bundlePath;
}

const noop = () => undefined;
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error };
