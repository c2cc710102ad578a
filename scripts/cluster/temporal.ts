// The real Temporal server on PostgreSQL: databases and schemas (Temporal's own SQL tool),
// the server process from temporal-config/server/jarvis.yaml, then namespace and our search
// attributes, registered through the operator API.
import { spawnSync } from 'node:child_process';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import pg from 'pg';
import { SEARCH_ATTRIBUTES } from '../../workflows/search-attributes.ts';
import { binaries } from './binaries.ts';

// CommonJS: its namespaces are not named exports under Node's ESM loader.
const { IndexedValueType } = proto.temporal.api.enums.v1;

export interface TemporalDatabases {
  /** Server holding both databases, e.g. postgres://postgres@127.0.0.1:5432/postgres */
  adminUrl: string;
  main: string;
  visibility: string;
}

/** The server's environment for temporal-config/server/jarvis.yaml. */
export function temporalEnv(db: TemporalDatabases, grpcPort: number): Record<string, string> {
  const u = new URL(db.adminUrl);
  return {
    TEMPORAL_DB_HOST: u.hostname,
    TEMPORAL_DB_PORT: u.port || '5432',
    TEMPORAL_DB_USER: decodeURIComponent(u.username),
    TEMPORAL_DB_PASSWORD: decodeURIComponent(u.password),
    TEMPORAL_DB: db.main,
    TEMPORAL_VISIBILITY_DB: db.visibility,
    TEMPORAL_GRPC_PORT: String(grpcPort),
  };
}

/** Ports the server binds, by the offsets in jarvis.yaml. */
export const temporalPortOffsets = [0, 1, 2, 6, 10, 767, -300, -299, -298, -294];

/**
 * Creates a missing database with its base schema, then upgrades it to the module's latest
 * version. The SQL tool records the version it applied, so running this on every start is safe.
 */
export async function applySchemas(db: TemporalDatabases): Promise<void> {
  const u = new URL(db.adminUrl);
  const base = ['--plugin', 'postgres12', '--ep', u.hostname, '-p', u.port || '5432', '-u', decodeURIComponent(u.username)];
  if (u.password) base.push('--pw', decodeURIComponent(u.password));
  const client = new pg.Client({ connectionString: db.adminUrl });
  await client.connect();
  try {
    for (const [name, dir] of [[db.main, 'temporal'], [db.visibility, 'visibility']] as const) {
      const found = await client.query('select 1 from pg_database where datname = $1', [name]);
      const tool = (...args: string[]) => {
        const res = spawnSync(binaries.sqlTool, [...base, '--db', name, ...args], { encoding: 'utf8' });
        if (res.status !== 0) throw new Error(`temporal sql tool ${args[0]} on ${name} failed: ${res.stderr || res.stdout}`);
      };
      if (found.rowCount === 0) {
        tool('create-database');
        tool('setup-schema', '-v', '0.0');
      }
      // The schemas the tool embeds: always the ones its server version expects.
      tool('update-schema', '--schema-name', `postgresql/v12/${dir}`);
    }
  } finally {
    await client.end();
  }
}

export async function dropDatabases(db: TemporalDatabases): Promise<void> {
  const client = new pg.Client({ connectionString: db.adminUrl });
  await client.connect();
  try {
    for (const name of [db.main, db.visibility]) await client.query(`drop database if exists "${name}" with (force)`);
  } finally {
    await client.end();
  }
}

/** Waits until the frontend answers, registers the namespace and our search attributes. */
export async function prepareNamespace(address: string, namespace: string, alive: () => boolean = () => true, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let conn: Connection | undefined;
  let last: unknown;
  while (!conn && Date.now() < deadline) {
    if (!alive()) throw new Error(`the Temporal server at ${address} exited before it was ready`);
    try {
      const c = await Connection.connect({ address, connectTimeout: 1000 });
      await c.workflowService.getSystemInfo({});
      conn = c;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  if (!conn) throw new Error(`Temporal at ${address} did not answer: ${String(last)}`);
  try {
    await retryUntil(deadline, async () => {
      try {
        await conn.workflowService.describeNamespace({ namespace });
      } catch {
        await conn.workflowService.registerNamespace({
          namespace, workflowExecutionRetentionPeriod: msToTs('3 days'),
        }).catch((err) => { if ((err as { code?: number }).code !== 6) throw err; }); // 6: already exists
        await conn.workflowService.describeNamespace({ namespace });
      }
    });
    const searchAttributes = Object.fromEntries(
      SEARCH_ATTRIBUTES.map((sa) => [sa.name, IndexedValueType[`INDEXED_VALUE_TYPE_${sa.type.toUpperCase() as 'KEYWORD' | 'INT'}`]]));
    // Until the new namespace reaches the frontend's cache, the operator API does not know it.
    await retryUntil(deadline, async () => {
      const have = await conn.operatorService.listSearchAttributes({ namespace });
      const missing = Object.fromEntries(Object.entries(searchAttributes).filter(([n]) => !have.customAttributes?.[n]));
      if (Object.keys(missing).length) {
        await conn.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
        throw new Error('search attributes registered; waiting for them to be listed');
      }
    });
  } finally {
    await conn.close();
  }
}

async function retryUntil(deadline: number, fn: () => Promise<void>): Promise<void> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
