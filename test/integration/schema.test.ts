// The schema the migrations build is the schema the entities describe: MikroORM's schema
// generator, run against a fresh database migrated from scratch, has nothing to change. When
// this fails, its message is the SQL that would make the database match the entities: fix the
// entity, or add a migration (never edit an applied one).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FOREIGN_KEYS } from '../../src/db/entities.ts';
import { dropDatabase, ensureDatabase, migrate, openOrm, type Orm } from '../../src/db/orm.ts';
import { TEST_PG_URL } from '../helpers/env.ts';

let orm: Orm;
let databaseUrl: string;

beforeAll(async () => {
  const url = new URL(TEST_PG_URL);
  url.pathname = `/jarvis_schema_${Date.now()}_${process.pid}`;
  databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  orm = await openOrm(databaseUrl);
  await migrate(orm);
});

afterAll(async () => {
  await orm?.close();
  if (databaseUrl) await dropDatabase(databaseUrl);
});

/** `alter table "t" drop constraint "t_c_fkey";`: what the generator says of a declared foreign key. */
const fkDrop = (fk: { table: string; column: string }) => `alter table "${fk.table}" drop constraint "${fk.table}_${fk.column}_fkey";`;

describe('migrations and entities', () => {
  it('build the same tables, columns, indexes and checks', async () => {
    const sql = await orm.schema.getUpdateSchemaSQL({ wrap: false });
    // The entities have no relations, so the generator would drop every foreign key; those are
    // compared with FOREIGN_KEYS below. Anything else it would change is drift.
    const declared = new Set(FOREIGN_KEYS.map(fkDrop));
    const drift = sql.split('\n').map((l) => l.trim()).filter((l) => l && !declared.has(l));
    expect(drift.join('\n')).toBe('');
  });

  it('build exactly the foreign keys the entities list', async () => {
    const rows = await orm.em.fork().execute<{ table: string; column: string; references: string; on_delete: string }[]>(`
      select c.conrelid::regclass::text as table, a.attname as column, c.confrelid::regclass::text as references,
             case c.confdeltype when 'c' then 'cascade' when 'a' then 'no action' else c.confdeltype::text end as on_delete
        from pg_constraint c
        join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
       where c.contype = 'f' and c.connamespace = 'public'::regnamespace and cardinality(c.conkey) = 1
    `);
    const key = (fk: { table: string; column: string; references: string; onDelete: string }) =>
      `${fk.table}.${fk.column} -> ${fk.references} on delete ${fk.onDelete}`;
    const actual = rows.map((r) => key({ ...r, onDelete: r.on_delete })).sort();
    expect(actual).toEqual(FOREIGN_KEYS.map(key).sort());
  });
});
