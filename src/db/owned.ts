// Owner scoping of user data, in one place: every read and write of a user's rows goes
// through an OwnedRepos bound to that user, which adds `userId` to each query. Another user's
// row is simply not found (404), so ids leak nothing.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { EntityName, FilterQuery, FindOptions } from '@mikro-orm/core';
import { errors } from '../http/errors.ts';

type Owned = { id: string; userId: string };

export class OwnedRepos {
  readonly em: EntityManager;
  readonly userId: string;

  constructor(em: EntityManager, userId: string) {
    this.em = em;
    this.userId = userId;
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
   * The user's row of `table` by id, with `extra` selected columns, in one SQL query and without
   * entity hydration: for hot read paths. `table` and `extra` are code, never request input.
   */
  async rawOne(table: string, id: string, extra?: string): Promise<Record<string, unknown> | null> {
    const rows = await this.em.execute<Record<string, unknown>[]>(
      `select t.*${extra ? `, ${extra}` : ''} from ${table} t where t.id = ? and t.user_id = ?`,
      [id, this.userId],
    );
    return rows[0] ?? null;
  }

  count<T extends Owned>(entity: EntityName<T>, where?: FilterQuery<T>): Promise<number> {
    return this.em.count(entity, this.scope(where));
  }

  create<T extends Owned>(entity: EntityName<T>, data: Omit<Partial<T>, 'userId'>): T {
    return this.em.create(entity, { ...data, userId: this.userId } as never) as T;
  }
}
