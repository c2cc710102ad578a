// The `pg` pool under MikroORM, for the few statements the engine runs per step of every run.
// Why beside the ORM (docs/benchmarks.md, F1): each statement through `em.execute` is its own
// round trip with its own socket write, and MikroORM's and Kysely's layers cost as much CPU again;
// a run mirror write took five round trips. Here a transaction's statements travel together as
// one multi-statement query (simple protocol), so a write is two round trips: BEGIN with the
// lock and the read, then the write with COMMIT. Same pool, same connections, same type parsers
// as the ORM. Values are inlined as literals (as MikroORM itself does for `execute`), through
// `literal()` only.
import pg from 'pg';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Orm } from './orm.ts';

export type Row = Record<string, unknown>;

/** SQL text made here (by `jsonb`, `uuid`), inlined as it is. */
export class Fragment {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }

  toString(): string {
    return this.text;
  }
}

/** A value as a SQL literal. Strings go through pg's escaping; anything else unknown throws. */
export function literal(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (v instanceof Fragment) return v.text;
  if (typeof v === 'string') return pg.escapeLiteral(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`not a finite number: ${v}`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new TypeError('invalid date');
    return `${pg.escapeLiteral(v.toISOString())}::timestamptz`;
  }
  throw new TypeError(`no SQL literal for ${typeof v}`);
}

/** Tagged template: `sql\`select ${x}\`` with every value inlined through `literal()`. */
export function sql(strings: TemplateStringsArray, ...values: unknown[]): string {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += literal(values[i]) + strings[i + 1];
  return out;
}

/** A JSON value as a jsonb literal (null stays SQL null). */
export function jsonb(v: unknown): Fragment {
  return new Fragment(v === undefined || v === null ? 'null' : `${pg.escapeLiteral(JSON.stringify(v))}::jsonb`);
}

/** A string as a uuid literal. */
export function uuid(v: string): Fragment {
  return new Fragment(`${pg.escapeLiteral(v)}::uuid`);
}

/** One connection of the pool, for statements sent together. */
export interface Batch {
  /** Runs the statements as one query (one round trip); the rows of each, in order. */
  run(statements: string[]): Promise<Row[][]>;
}

export class NativeSql {
  private readonly pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  /** One statement, parameters bound ($1...) by the extended protocol. */
  async query<T extends Row = Row>(text: string, values: unknown[] = []): Promise<T[]> {
    return (await this.pool.query(text, values)).rows as T[];
  }

  /**
   * One statement prepared once per connection under `name` (PostgreSQL parses and plans it once,
   * then runs it): for the API's hottest reads. One name, one text, always.
   */
  async prepared<T extends Row = Row>(name: string, text: string, values: unknown[]): Promise<T[]> {
    return (await this.pool.query({ name, text, values })).rows as T[];
  }

  /**
   * A transaction whose statements `fn` sends in batches: the first batch should start with
   * BEGIN and the last end with COMMIT. Any failure rolls back before the error is rethrown, and
   * a transaction `fn` left open (it returned without COMMIT) is rolled back too.
   */
  async transaction<T>(fn: (batch: Batch) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let open = false;
    const batch: Batch = {
      async run(statements) {
        const begins = statements.some((s) => /^\s*begin\b/i.test(s));
        const ends = statements.some((s) => /^\s*(commit|rollback)\b/i.test(s));
        // A failed batch may leave the transaction open (aborted): roll back. (A rollback with
        // none open is only a warning.)
        open ||= begins;
        const res = (await client.query(statements.join(';\n'))) as unknown as pg.QueryResult | pg.QueryResult[];
        if (ends) open = false;
        return (Array.isArray(res) ? res : [res]).map((r) => r.rows as Row[]);
      },
    };
    let broken: Error | undefined;
    try {
      const out = await fn(batch);
      if (open) await client.query('rollback');
      return out;
    } catch (err) {
      if (open) await client.query('rollback').catch((e: unknown) => (broken = e as Error));
      throw err;
    } finally {
      // A connection whose rollback failed is not handed to anyone else.
      client.release(broken);
    }
  }
}

const instances = new WeakMap<object, Promise<NativeSql>>();

/** The NativeSql under an ORM or any of its EntityManagers (they share one connection pool). */
export function nativeSql(from: Orm | EntityManager): Promise<NativeSql> {
  const connection = ('em' in from ? from.em : from).getConnection();
  let p = instances.get(connection);
  if (!p) {
    p = connection.getNativeClient().then((pool) => new NativeSql(pool as pg.Pool));
    instances.set(connection, p);
  }
  return p;
}
