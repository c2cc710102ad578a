// What the bench and the soak start before the system under test: a Temporal dev server (in
// memory) on free ports, a fresh migrated database, and both workflow bundles, each with the
// cleanup that undoes it (pushed in start order; run them in reverse).
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { dropDatabase, ensureDatabase, migrate, openOrm, type Orm } from '../../src/db/orm.ts';
import { freePort, startDevServer } from '../../src/temporal/dev-server.ts';
import { WORKFLOW_BUNDLE_OPTIONS } from '../../src/task-worker.ts';

export interface Cleanup {
  what: string;
  fn: () => Promise<unknown> | unknown;
}

export interface Prepared {
  temporalAddress: string;
  /** The dev server's process id (CPU accounting). */
  temporalPid: number;
  databaseUrl: string;
  databaseName: string;
  orm: Orm;
  workflowBundle: string;
  bareBundle: string;
}

const PG_BASE = process.env.BENCH_PG_URL ?? process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** `dbPrefix`: the database is `<dbPrefix>_<ms>`, dropped by its cleanup. Bundles go to `dir`. */
export async function prepare(dir: string, dbPrefix: string, cleanups: Cleanup[]): Promise<Prepared> {
  const dev = await startDevServer({ port: await freePort(), uiPort: await freePort() });
  cleanups.push({ what: 'Temporal dev server', fn: () => dev.stop() });

  const url = new URL(PG_BASE);
  url.pathname = `/${dbPrefix}_${Date.now()}`;
  const databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  cleanups.push({ what: 'database', fn: () => dropDatabase(databaseUrl) });
  const orm = await openOrm(databaseUrl);
  cleanups.push({ what: 'ORM', fn: () => orm.close() });
  await migrate(orm);

  const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error };
  const workflowBundle = resolve(dir, 'workflows.js');
  const bareBundle = resolve(dir, 'bare-workflows.js');
  writeFileSync(workflowBundle, (await bundleWorkflowCode({ ...WORKFLOW_BUNDLE_OPTIONS, logger: quiet })).code);
  // The bare worker bundled the same way (its one module preloaded: shared by its runs, as ours are).
  const barePath = resolve(import.meta.dirname, 'bare-workflows.ts');
  writeFileSync(bareBundle, (await bundleWorkflowCode({ workflowsPath: barePath, preloadModules: [barePath], logger: quiet })).code);
  return { temporalAddress: dev.address, temporalPid: dev.child.pid ?? 0, databaseUrl, databaseName: url.pathname.slice(1), orm, workflowBundle, bareBundle };
}
