// Per-account limits on what a user may hold: unfinished runs, devices, workflows, schedules.
// The check and the insert it guards run in one transaction behind `account_admit` (migration
// 20261206000008), so concurrent requests of one user cannot pass a limit together.
import type { EntityName } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { boundOnEm, sql, type Sql } from './sql.ts';
import type { UserScope } from './scope.ts';

export type Counted = 'runs' | 'devices' | 'workflows' | 'schedules';

/** SQLSTATE raised by account_admit when the user already holds `max`. */
const LIMIT_REACHED = 'JL001';

/** The statement that takes the user's place for one more `what`, inside the caller's transaction. */
export function admit(scope: UserScope, what: Counted, max: number): Sql {
  return sql`select account_admit(${scope.userId}::uuid, ${what}::text, ${max}::bigint)`;
}

/** Runs `insert` in a transaction that first takes the user's place for one more `what`. */
export function withinLimit<T>(em: EntityManager, scope: UserScope, what: Counted, max: number, insert: (tx: EntityManager) => Promise<T>): Promise<T> {
  return em.transactional(async (tx) => {
    await boundOnEm(tx, admit(scope, what, max));
    return insert(tx);
  });
}

/** Inserts one row of the user's `entity` unless the user already holds `max` of `what`. */
export function insertWithinLimit<T extends object>(
  repos: { em: EntityManager; userId: string }, entity: EntityName<T>, data: object, what: Counted, max: number,
): Promise<T> {
  return withinLimit(repos.em, repos, what, max, async (tx) => {
    const row = tx.create(entity, { ...data, userId: repos.userId } as never) as T;
    await tx.flush();
    return row;
  });
}

/** Whether `err` (from the driver or MikroORM's wrapper of it) is account_admit's refusal. */
export function isLimitReached(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === LIMIT_REACHED) return true;
  }
  return false;
}
