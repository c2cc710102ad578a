// Hand-written SQL, in one style: the `sql` tag. A value in the template is never text of the
// statement: a statement is text with holes plus its values, and the way it travels decides how
// the values fill the holes:
//   - alone (`Db.all`, `Db.one`, `Db.prepared`, `Tx.all`): bound as $1, $2... by the extended
//     protocol, so PostgreSQL never parses a value, and a named statement is planned once per
//     connection;
//   - with others in one round trip (`Tx.run`): the simple protocol has no parameters, so each
//     value is written as a literal by `literal()`, the one function that quotes (pg's
//     `escapeLiteral`) and that refuses any type it does not know.
// Why batches at all: the engine's per-step and per-submission writes are transactions of
// several statements, and a round trip per statement would make their latency grow with the
// count (docs/design.md, "The data layer"). Same pool, connections and type parsers as MikroORM.
import pg from 'pg';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Orm } from './orm.ts';

export type Row = Record<string, unknown>;

/** A statement or a piece of one: `parts` around `values` (parts.length === values.length + 1). */
export class Sql {
  readonly parts: readonly string[];
  readonly values: readonly unknown[];

  constructor(parts: readonly string[], values: readonly unknown[]) {
    this.parts = parts;
    this.values = values;
  }

  /** The text with $1, $2... for the values (`values` in that order). */
  get text(): string {
    let out = this.parts[0];
    for (let i = 1; i < this.parts.length; i++) out += `$${i}${this.parts[i]}`;
    return out;
  }

  /** The text with every value written as a literal, for a multi-statement round trip. */
  inline(): string {
    let out = this.parts[0];
    for (let i = 0; i < this.values.length; i++) out += literal(this.values[i]) + this.parts[i + 1];
    return out;
  }
}

/**
 * `sql\`select ... where id = ${id}\``: values become parameters; a `Sql` value (from `sql`,
 * `raw`, `join`, `jsonb`) is spliced in with its own values.
 */
export function sql(strings: TemplateStringsArray, ...values: unknown[]): Sql {
  const parts: string[] = [strings[0]];
  const vals: unknown[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v instanceof Sql) {
      parts[parts.length - 1] += v.parts[0];
      for (let j = 0; j < v.values.length; j++) {
        vals.push(v.values[j]);
        parts.push(v.parts[j + 1]);
      }
      parts[parts.length - 1] += strings[i + 1];
    } else {
      vals.push(v);
      parts.push(strings[i + 1]);
    }
  }
  return new Sql(parts, vals);
}

/** SQL text written in code (a column list, a table name): never request input. */
export function raw(text: string): Sql {
  return new Sql([text], []);
}

export const empty = raw('');

/** Pieces joined by `separator`, each keeping its values. */
export function join(pieces: readonly Sql[], separator = ', '): Sql {
  if (pieces.length === 0) return empty;
  const parts: string[] = [...pieces[0].parts];
  const values: unknown[] = [...pieces[0].values];
  for (const piece of pieces.slice(1)) {
    parts[parts.length - 1] += separator + piece.parts[0];
    values.push(...piece.values);
    parts.push(...piece.parts.slice(1));
  }
  return new Sql(parts, values);
}

/** A JSON value as jsonb (null stays SQL null). */
export function jsonb(v: unknown): Sql {
  return v === undefined || v === null ? raw('null') : sql`${JSON.stringify(v)}::jsonb`;
}

/** A value as a SQL literal. Strings go through pg's escaping; anything else unknown throws. */
export function literal(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return pg.escapeLiteral(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`not a finite number: ${v}`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  // An array of literals; the statement casts it (`${ids}::uuid[]`), which types an empty one too.
  if (Array.isArray(v)) return v.length === 0 ? "'{}'" : `ARRAY[${v.map(literal).join(', ')}]`;
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new TypeError('invalid date');
    return `${pg.escapeLiteral(v.toISOString())}::timestamptz`;
  }
  throw new TypeError(`no SQL literal for ${typeof v}`);
}

/** A transaction's connection. */
export interface Tx {
  /**
   * The statements as one query (one round trip, values inlined); the rows of each, in order.
   * The first batch of a transaction starts with BEGIN, the last ends with COMMIT.
   */
  run(statements: readonly (Sql | 'begin' | 'commit')[]): Promise<Row[][]>;
  /** One statement, values bound. */
  all<T extends Row = Row>(q: Sql): Promise<T[]>;
}

const names = new Map<string, string>();

/** A prepared statement's name, the same for the same text (texts are code, so few). */
function statementName(text: string): string {
  let name = names.get(text);
  if (!name) names.set(text, (name = `q${names.size + 1}`));
  return name;
}

/** The `pg` pool under the ORM, for hand-written SQL. */
export class Db {
  private readonly pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  async all<T extends Row = Row>(q: Sql): Promise<T[]> {
    return (await this.pool.query(q.text, q.values as unknown[])).rows as T[];
  }

  async one<T extends Row = Row>(q: Sql): Promise<T | undefined> {
    return (await this.all<T>(q))[0];
  }

  /**
   * Prepared once per connection (PostgreSQL parses and plans it once, then runs it): for the
   * hottest reads. Only for statements whose text does not vary with the values.
   */
  async prepared<T extends Row = Row>(q: Sql): Promise<T[]> {
    const text = q.text;
    return (await this.pool.query({ name: statementName(text), text, values: q.values as unknown[] })).rows as T[];
  }

  /**
   * A transaction on one connection. Any failure rolls back before the error is rethrown, and a
   * transaction `fn` left open (it returned without COMMIT) is rolled back too.
   */
  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let open = false;
    const tx: Tx = {
      async run(statements) {
        const texts = statements.map((s) => (typeof s === 'string' ? s : s.inline()));
        // A failed batch may leave the transaction open (aborted): roll back. (A rollback with
        // none open is only a warning.)
        open ||= statements.includes('begin');
        const res = (await client.query(texts.join(';\n'))) as unknown as pg.QueryResult | pg.QueryResult[];
        if (statements.includes('commit')) open = false;
        return (Array.isArray(res) ? res : [res]).map((r) => r.rows as Row[]);
      },
      async all<R extends Row = Row>(q: Sql) {
        return (await client.query(q.text, q.values as unknown[])).rows as R[];
      },
    };
    let broken: Error | undefined;
    try {
      const out = await fn(tx);
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

const instances = new WeakMap<object, Promise<Db>>();

/** The Db under an ORM or any of its EntityManagers (they share one connection pool). */
export function dbOf(from: Orm | EntityManager): Promise<Db> {
  const connection = ('em' in from ? from.em : from).getConnection();
  let p = instances.get(connection);
  if (!p) {
    const found = connection.getNativeClient().then((pool) => new Db(pool as pg.Pool));
    instances.set(connection, found);
    // A failure is not kept. MikroORM connects on first use and checks the database then, so a
    // process whose first query comes while PostgreSQL is down gets ECONNREFUSED here; kept, that
    // one error would answer every later call until the process restarts.
    found.catch(() => {
      if (instances.get(connection) === found) instances.delete(connection);
    });
    p = found;
  }
  return p;
}

/**
 * A statement inside an EntityManager's transaction (one that ORM changes share), values
 * inlined as for a batch: MikroORM sends a statement without parameters as it is.
 */
export function onEm<T extends Row = Row>(em: EntityManager, q: Sql): Promise<T[]> {
  return em.execute<T[]>(q.inline());
}

/**
 * A statement on an EntityManager (inside its transaction, when it has one) with its values bound
 * by the driver, for values no literal carries: bytes (a file's chunks).
 */
export function boundOnEm<T extends Row = Row>(em: Pick<EntityManager, 'execute'>, q: Sql): Promise<T[]> {
  return em.execute<T[]>(q.parts.join('?'), [...q.values]);
}
