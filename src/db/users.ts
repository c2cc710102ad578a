// People's accounts. Emails are stored lower-cased (unique whatever their case).
import type { EntityManager } from '@mikro-orm/postgresql';
import { User } from './entities.ts';
import type { OwnedRepos } from './owned.ts';
import { DEVICE_ENDS_CHANNEL } from './channels.ts';
import { revokeAllOf } from './sessions.ts';
import { dbOf, sql } from './sql.ts';
import { errors } from '../errors.ts';

export function byEmail(em: EntityManager, email: string): Promise<User | null> {
  return em.findOne(User, { email });
}

export async function emailTaken(em: EntityManager, email: string): Promise<boolean> {
  return (await em.count(User, { email })) > 0;
}

/** A new account, written at once (a duplicate email fails with 23505). */
export async function insert(em: EntityManager, user: Pick<User, 'id' | 'email' | 'passwordHash' | 'name'>): Promise<User> {
  const row = em.create(User, user);
  await em.flush();
  return row;
}

/** The scope's own account (a 401 once it is deleted: the caller's token outlived it by a moment). */
export async function me(repos: OwnedRepos): Promise<User> {
  const user = await repos.em.findOne(User, { id: repos.userId });
  if (!user) throw errors.unauthenticated('account deleted');
  return user;
}

/** Writes the changes made to the account read through `repos`. */
export async function save(repos: OwnedRepos): Promise<void> {
  await repos.em.flush();
}

/** What of a removed account lives outside PostgreSQL, for the caller to end there too. */
export interface RemovedAccount {
  /** Temporal workflow ids of the runs that had not finished. */
  runs: string[];
  /** Temporal Schedule ids. */
  schedules: string[];
  devices: string[];
  /** Login sessions revoked (every node hears of them on commit). */
  sessions: string[];
}

/**
 * Removes the scope's account and, by the schema's cascades, every row of it (devices, workflows
 * and versions, tasks with steps and events, schedules, logs, files' rows, sessions). Its sessions
 * are revoked first and its devices' connections ended, in the same transaction, so every node
 * closes their sockets on commit. `runs`: those the mirror still says are unfinished.
 */
export async function removeAccount(repos: OwnedRepos): Promise<RemovedAccount> {
  const db = await dbOf(repos.root);
  return db.transaction(async (tx) => {
    await tx.run(['begin']);
    const sessions = await revokeAllOf(tx, repos, 'account deleted', null);
    const [gone] = await tx.all<{ runs: string[]; schedules: string[]; devices: string[] } & Record<string, unknown>>(sql`
      select coalesce((select array_agg(temporal_workflow_id) from tasks
                        where user_id = ${repos.userId} and status in ('pending', 'running', 'paused')), '{}') as runs,
             coalesce((select array_agg(temporal_schedule_id) from schedules where user_id = ${repos.userId}), '{}') as schedules,
             coalesce((select array_agg(id::text) from devices where user_id = ${repos.userId}), '{}') as devices`);
    await tx.all(sql`select pg_notify(${DEVICE_ENDS_CHANNEL}, json_build_object('device_id', id, 'reason', 'account deleted')::text)
      from devices where user_id = ${repos.userId}`);
    await tx.all(sql`delete from users where id = ${repos.userId}`);
    await tx.run(['commit']);
    return { ...gone, sessions };
  });
}

/** Revokes every session of the account (every node hears of it); the ids revoked. */
export async function revokeSessions(repos: OwnedRepos, reason: string): Promise<string[]> {
  return revokeAllOf(await dbOf(repos.root), repos, reason, null);
}

/** The Temporal workflow ids of the account's runs that the mirror says have not finished. */
export async function unfinishedRuns(repos: OwnedRepos): Promise<string[]> {
  const rows = await (await dbOf(repos.root)).all<{ id: string }>(sql`select temporal_workflow_id as id from tasks
    where user_id = ${repos.userId} and status in ('pending', 'running', 'paused')`);
  return rows.map((r) => r.id);
}

/** The Temporal Schedule ids of the scope's schedules. */
export async function scheduleIdsOf(repos: OwnedRepos): Promise<string[]> {
  const rows = await (await dbOf(repos.root)).all<{ id: string }>(sql`select temporal_schedule_id as id from schedules where user_id = ${repos.userId}`);
  return rows.map((r) => r.id);
}
