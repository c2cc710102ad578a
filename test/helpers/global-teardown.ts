import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { dropDatabase } from '../../src/db/orm.ts';
import type { DevServer } from '../../src/temporal/dev-server.ts';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as Record<string, unknown>).__JARVIS_TEMPORAL__ as DevServer | undefined;
  await server?.stop();
  if (process.env.TEST_DATABASE_URL && !process.env.KEEP_TEST_DB) await dropDatabase(process.env.TEST_DATABASE_URL);
  if (process.env.TEST_WORKFLOW_BUNDLE) rmSync(dirname(process.env.TEST_WORKFLOW_BUNDLE), { recursive: true, force: true });
}
