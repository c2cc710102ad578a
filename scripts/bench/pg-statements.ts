// BENCH_PG_STATEMENTS=<file>: what PostgreSQL did for a figure's runs, statement by statement
// (pg_stat_statements: calls, time, rows, WAL bytes), with the database's commits and the WAL it
// wrote, per run. Needs a PostgreSQL server started with `shared_preload_libraries =
// 'pg_stat_statements'` (the bench points at one through BENCH_PG_URL); off by default.
import { appendFileSync } from 'node:fs';
import type { Orm } from '../../src/db/orm.ts';

interface Statement {
  query: string;
  calls: number;
  ms: number;
  rows: number;
  walBytes: number;
}

interface Snapshot {
  statements: Map<string, Statement>;
  commits: number;
  walLsn: string;
  /** Rows written by table: inserted, updated (of which HOT: no index entry), deleted. */
  tables: Map<string, { ins: number; upd: number; hot: number; del: number }>;
}

export const statementsFile = process.env.BENCH_PG_STATEMENTS;

async function snapshot(orm: Orm): Promise<Snapshot> {
  const conn = orm.em.fork().getConnection();
  await conn.execute('create extension if not exists pg_stat_statements');
  const rows = await conn.execute(`select queryid::text as id, query, calls::float8 as calls, total_exec_time as ms, rows::float8 as rows, wal_bytes::float8 as wal
    from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())`);
  const [db] = await conn.execute(`select xact_commit::float8 as commits, pg_current_wal_lsn()::text as lsn
    from pg_stat_database where datname = current_database()`);
  const tables = new Map<string, { ins: number; upd: number; hot: number; del: number }>();
  for (const r of await conn.execute(`select relname, n_tup_ins::float8 as ins, n_tup_upd::float8 as upd, n_tup_hot_upd::float8 as hot, n_tup_del::float8 as del
    from pg_stat_user_tables`)) tables.set(String(r.relname), { ins: Number(r.ins), upd: Number(r.upd), hot: Number(r.hot), del: Number(r.del) });
  const statements = new Map<string, Statement>();
  for (const r of rows) statements.set(String(r.id), { query: String(r.query), calls: Number(r.calls), ms: Number(r.ms), rows: Number(r.rows), walBytes: Number(r.wal) });
  return { statements, commits: Number(db.commits), walLsn: String(db.lsn), tables };
}

/** The work's PostgreSQL statements per unit, written to BENCH_PG_STATEMENTS (a table) and logged. */
export async function withStatements<T>(orm: Orm, label: string, work: () => Promise<T>, units: (r: T) => number, log: (msg: string) => void): Promise<T> {
  if (!statementsFile) return work();
  const before = await snapshot(orm);
  const result = await work();
  const after = await snapshot(orm);
  const n = Math.max(1, units(result));
  const [walDiff] = await orm.em.fork().getConnection()
    .execute(`select pg_wal_lsn_diff('${after.walLsn}', '${before.walLsn}')::float8 as bytes`);
  const lines: string[] = [];
  let calls = 0;
  let ms = 0;
  let wal = 0;
  const rows = [...after.statements].map(([id, s]) => {
    const b = before.statements.get(id);
    return { ...s, calls: s.calls - (b?.calls ?? 0), ms: s.ms - (b?.ms ?? 0), rows: s.rows - (b?.rows ?? 0), walBytes: s.walBytes - (b?.walBytes ?? 0) };
  }).filter((s) => s.calls > 0).sort((a, b) => b.ms - a.ms);
  for (const s of rows) {
    calls += s.calls;
    ms += s.ms;
    wal += s.walBytes;
    lines.push(`| ${(s.calls / n).toFixed(2)} | ${(s.ms / n).toFixed(3)} | ${(s.rows / n).toFixed(2)} | ${Math.round(s.walBytes / n)} | ${s.query.replace(/\s+/g, ' ').slice(0, 160).replace(/\|/g, '\\|')} |`);
  }
  const commits = (after.commits - before.commits) / n;
  const walPerRun = Number(walDiff.bytes) / n;
  const head = `${label}: ${n} runs; per run ${(calls / n).toFixed(1)} statements, ${commits.toFixed(2)} commits, ` +
    `${(ms / n).toFixed(2)} ms executing, WAL ${Math.round(walPerRun)} bytes (${Math.round(wal / n)} by statements)`;
  log(head);
  const tableLines = [...after.tables].map(([name, t]) => {
    const b = before.tables.get(name);
    const d = { ins: t.ins - (b?.ins ?? 0), upd: t.upd - (b?.upd ?? 0), hot: t.hot - (b?.hot ?? 0), del: t.del - (b?.del ?? 0) };
    return { name, ...d };
  }).filter((t) => t.ins + t.upd + t.del > 0)
    .map((t) => `| ${t.name} | ${(t.ins / n).toFixed(2)} | ${(t.upd / n).toFixed(2)} | ${(t.hot / n).toFixed(2)} | ${(t.del / n).toFixed(2)} |`);
  appendFileSync(statementsFile, `\n### ${head}\n\n| table | inserted/run | updated/run | of which HOT | deleted/run |\n| --- | --- | --- | --- | --- |\n${tableLines.join('\n')}\n\n| calls/run | ms/run | rows/run | WAL bytes/run | statement |\n| --- | --- | --- | --- | --- |\n${lines.join('\n')}\n`);
  return result;
}
