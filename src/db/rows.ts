// Rows read by raw SQL, turned into the entity's property shape without hydrating entities:
// for hot read paths whose result is only presented (no identity map, no change tracking).
// The column -> property map comes from MikroORM's metadata, once per entity.
// Also the other way: a row as an insert statement for hot write paths.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { EntityName } from '@mikro-orm/core';
import { join, jsonb, raw, sql, type Sql } from './sql.ts';

interface Column {
  field: string;
  prop: string;
  /** A timestamp that may arrive as an ISO string (inside json_agg). */
  date: boolean;
  json: boolean;
}

const columnsByEntity = new WeakMap<object, Column[]>();

function columnsOf(em: EntityManager, entity: EntityName<object>): Column[] {
  const meta = em.getMetadata().get(entity as never);
  let cols = columnsByEntity.get(meta);
  if (!cols) {
    cols = Object.values(meta.properties)
      .filter((p) => p.fieldNames?.length === 1 && p.persist !== false)
      .map((p) => ({
        field: p.fieldNames[0],
        prop: p.name,
        date: p.runtimeType === 'Date',
        json: p.columnTypes?.[0] === 'jsonb',
      }));
    columnsByEntity.set(meta, cols);
  }
  return cols;
}

/** A plain read-only `T` (property names, Dates) from a row of its table (column names). */
export function plainRow<T extends object>(em: EntityManager, entity: EntityName<T>, row: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const c of columnsOf(em, entity as EntityName<object>)) {
    const v = row[c.field];
    out[c.prop] = c.date && typeof v === 'string' ? new Date(v) : v;
  }
  return out as T;
}

/**
 * `insert into <table> (...) values (...)` for a whole row given by property: for a caller that
 * sends it with other statements in one trip.
 */
export function insertStatement<T extends object>(em: EntityManager, entity: EntityName<T>, row: T): Sql {
  const cols = columnsOf(em, entity as EntityName<object>);
  const values = cols.map((c) => {
    const v = (row as Record<string, unknown>)[c.prop];
    return c.json ? jsonb(v) : sql`${v}`;
  });
  return sql`insert into ${raw(tableOf(em, entity))} (${raw(cols.map((c) => c.field).join(', '))}) values (${join(values)})`;
}

/**
 * The entity's columns as a select list (`t.id, t.user_id, ...`) rather than `t.*`: a prepared
 * statement's result type then stays the same when a migration adds a column, where `t.*` would
 * fail on every connection that prepared it ("cached plan must not change result type").
 */
export function selectList<T extends object>(em: EntityManager, entity: EntityName<T>, alias: string): string {
  const cols = columnsOf(em, entity as EntityName<object>);
  let byAlias = selectLists.get(cols);
  if (!byAlias) selectLists.set(cols, (byAlias = new Map()));
  let list = byAlias.get(alias);
  if (!list) byAlias.set(alias, (list = cols.map((c) => `${alias}.${c.field}`).join(', ')));
  return list;
}

const selectLists = new WeakMap<Column[], Map<string, string>>();

export function tableOf<T extends object>(em: EntityManager, entity: EntityName<T>): string {
  return em.getMetadata().get(entity as never).tableName;
}
