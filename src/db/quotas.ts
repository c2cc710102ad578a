// Per-account limits on what a user may hold: unfinished runs, devices, workflows, schedules,
// and the notification targets each notification fans out to (webhooks, Web Push subscriptions,
// FCM tokens). The check and the insert it guards run in one transaction behind `account_admit`
// (migrations 20261206000008, 20261206190000), so concurrent requests of one user cannot pass a
// limit together.
import type { EntityName } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { errors } from '../errors.ts';
import { boundOnEm, sql, type Sql } from './sql.ts';
import type { UserScope } from './scope.ts';

export type Counted = 'runs' | 'devices' | 'workflows' | 'schedules' | 'webhooks' | 'push_subscriptions' | 'fcm_tokens';

/** The kinds saved by upsert, whose key (endpoint, token) may name one the user already holds. */
export type Keyed = 'push_subscriptions' | 'fcm_tokens';

/** SQLSTATE raised by account_admit when the user already holds `max`. */
const LIMIT_REACHED = 'JL001';

/** The statement that takes the user's place for one more `what`, inside the caller's transaction. */
export function admit(scope: UserScope, what: Counted, max: number): Sql {
  return sql`select account_admit(${scope.userId}::uuid, ${what}::text, ${max}::bigint)`;
}

/**
 * As `admit`, for a target saved by upsert: when the user already holds the one `key` names, it
 * is saved again in place and takes no new place (nor is it refused at the limit).
 */
export function admitKeyed(scope: UserScope, what: Keyed, max: number, key: string): Sql {
  return sql`select account_admit(${scope.userId}::uuid, ${what}::text, ${max}::bigint, ${key}::text)`;
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

/** For `.catch`: account_admit's refusal as the contract's 403 code 1003; any other error as it is. */
export function refusedOverLimit(what: Counted, max: number): (err: unknown) => never {
  return (err) => {
    throw isLimitReached(err) ? errors.limitReached(what, max) : err;
  };
}
