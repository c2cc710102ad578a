// A user's Web Push subscriptions (one per browser that allowed notifications).
import type { EntityManager } from '@mikro-orm/postgresql';
import { errors } from '../errors.ts';
import { PushSubscription } from './entities.ts';
import type { OwnedRepos } from './owned.ts';
import { admitKeyed } from './quotas.ts';
import { plainRow } from './rows.ts';
import { dbOf, sql } from './sql.ts';

/**
 * Saves the browser's subscription for the user. A push endpoint belongs to one browser: saved
 * again (new keys, or another user signed in on that browser), the row is taken over. Unless the
 * user already holds this endpoint, it takes one of their `max` places (throws; see quotas.ts).
 */
export async function upsert(repos: OwnedRepos, s: Pick<PushSubscription, 'endpoint' | 'p256dh' | 'auth' | 'userAgent'>, max: number): Promise<{ row: PushSubscription; created: boolean }> {
  const db = await dbOf(repos.root);
  const [, , [row]] = await db.transaction((tx) => tx.run(['begin', admitKeyed(repos, 'push_subscriptions', max, s.endpoint),
    sql`insert into push_subscriptions (id, user_id, endpoint, p256dh, auth, user_agent)
      values (${crypto.randomUUID()}, ${repos.userId}, ${s.endpoint}, ${s.p256dh}, ${s.auth}, ${s.userAgent})
    on conflict (endpoint) do update set user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth, user_agent = excluded.user_agent
    returning *, (xmax = 0) as created`, 'commit']));
  const { created, ...rest } = row;
  return { row: plainRow(repos.root, PushSubscription, rest), created: Boolean(created) };
}

export async function remove(repos: OwnedRepos, id: string): Promise<void> {
  const rows = await (await dbOf(repos.root)).all(sql`delete from push_subscriptions where id = ${id} and user_id = ${repos.userId} returning id`);
  if (rows.length === 0) throw errors.notFound('push subscription');
}

/** The push service said the subscription is gone (404, 410): forget it, whoever's it is. */
export async function forget(em: EntityManager, id: string): Promise<void> {
  await (await dbOf(em)).all(sql`delete from push_subscriptions where id = ${id}`);
}
