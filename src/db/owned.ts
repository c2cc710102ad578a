// The user scope the ORM side of src/db works through: an OwnedRepos is bound to one user and
// adds `userId` to each query it runs. The db modules (src/db/tasks.ts, files.ts, ...) take one
// from the request; nothing outside src/db queries through it directly.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { EntityName, FilterQuery, FindOptions } from '@mikro-orm/core';
import { errors } from '../errors.ts';
import { dbOf, raw, sql, type Sql } from './sql.ts';
import { insertStatement, selectList, tableOf } from './rows.ts';
import type { UserScope } from './scope.ts';

type Owned = { id: string; userId: string };

export class OwnedRepos implements UserScope {
  readonly userId: string;
  private readonly emOf: () => EntityManager;
  private forked?: EntityManager;
  private readonly rootOf: () => EntityManager;

  /** `em`: the request's EntityManager, or how to fork it when first needed. */
  constructor(em: EntityManager | (() => EntityManager), userId: string, root?: EntityManager) {
    this.emOf = typeof em === 'function' ? em : () => em;
    this.userId = userId;
    this.rootOf = root ? () => root : () => this.em;
  }

  get em(): EntityManager {
    return (this.forked ??= this.emOf());
  }

  /**
   * An EntityManager of the ORM that may not be the request's (no fork made for it): for the
   * connection pool and the metadata, never for queries or changes.
   */
  get root(): EntityManager {
    return this.rootOf();
  }

  private scope<T extends Owned>(where: FilterQuery<T> = {} as FilterQuery<T>): FilterQuery<T> {
    return { ...(where as object), userId: this.userId } as FilterQuery<T>;
  }

  findOne<T extends Owned>(entity: EntityName<T>, id: string): Promise<T | null> {
    return this.em.findOne(entity, this.scope<T>({ id } as FilterQuery<T>)) as Promise<T | null>;
  }

  async get<T extends Owned>(entity: EntityName<T>, id: string, what: string): Promise<T> {
    const row = await this.findOne(entity, id);
    if (!row) throw errors.notFound(what);
    return row;
  }

  find<T extends Owned>(entity: EntityName<T>, where?: FilterQuery<T>, options?: FindOptions<T>): Promise<T[]> {
    return this.em.find(entity, this.scope(where), options as never) as Promise<T[]>;
  }

  findAndCount<T extends Owned>(
    entity: EntityName<T>,
    where?: FilterQuery<T>,
    options?: FindOptions<T>,
  ): Promise<[T[], number]> {
    return this.em.findAndCount(entity, this.scope(where), options as never) as Promise<[T[], number]>;
  }

  /**
   * The user's row of `entity` by id (its columns, by column name), with `extra` selected
   * columns, in one SQL query and without entity hydration: for hot read paths. `extra` may
   * refer to the row as `t`; its text must not vary with its values (the statement is prepared).
   */
  async rawOne<T extends Owned>(entity: EntityName<T>, id: string, extra?: Sql): Promise<Record<string, unknown> | null> {
    // Straight to the pool (one round trip, no ORM layers; outside any transaction of `em`), as
    // a statement each connection prepares once.
    const db = await dbOf(this.root);
    const columns = raw(selectList(this.root, entity, 't'));
    const rows = await db.prepared(sql`select ${columns}${extra ? sql`, ${extra}` : raw('')}
      from ${raw(tableOf(this.root, entity))} t where t.id = ${id} and t.user_id = ${this.userId}`);
    return rows[0] ?? null;
  }

  /**
   * A new row of the user's as a plain object and the statement that inserts it, for a caller
   * that sends the insert together with other statements (POST /tasks). `userId` is set here.
   */
  insertion<T extends Owned>(entity: EntityName<T>, data: Omit<T, 'userId'>): { row: T; statement: Sql } {
    const row = { ...data, userId: this.userId } as T;
    return { row, statement: insertStatement(this.root, entity, row) };
  }

  count<T extends Owned>(entity: EntityName<T>, where?: FilterQuery<T>): Promise<number> {
    return this.em.count(entity, this.scope(where));
  }

  create<T extends Owned>(entity: EntityName<T>, data: Omit<Partial<T>, 'userId'>): T {
    return this.em.create(entity, { ...data, userId: this.userId } as never) as T;
  }
}
