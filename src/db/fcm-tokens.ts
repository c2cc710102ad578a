// A user's FCM registration tokens (one per app install that allowed notifications).
import type { EntityManager } from '@mikro-orm/postgresql';
import { errors } from '../errors.ts';
import { FcmToken } from './entities.ts';
import type { OwnedRepos } from './owned.ts';
import { admitKeyed } from './quotas.ts';
import { plainRow } from './rows.ts';
import { dbOf, sql } from './sql.ts';

/**
 * Saves the app's token for the user; a token belongs to one app install, so saved again it is
 * taken over. Unless the user already holds this token, it takes one of their `max` places
 * (throws; see quotas.ts).
 */
export async function upsert(repos: OwnedRepos, t: Pick<FcmToken, 'token' | 'platform'>, max: number): Promise<{ row: FcmToken; created: boolean }> {
  const db = await dbOf(repos.root);
  const [, , [row]] = await db.transaction((tx) => tx.run(['begin', admitKeyed(repos, 'fcm_tokens', max, t.token),
    sql`insert into fcm_tokens (id, user_id, token, platform)
      values (${crypto.randomUUID()}, ${repos.userId}, ${t.token}, ${t.platform})
    on conflict (token) do update set user_id = excluded.user_id, platform = excluded.platform
    returning *, (xmax = 0) as created`, 'commit']));
  const { created, ...rest } = row;
  return { row: plainRow(repos.root, FcmToken, rest), created: Boolean(created) };
}

export async function remove(repos: OwnedRepos, id: string): Promise<void> {
  const rows = await (await dbOf(repos.root)).all(sql`delete from fcm_tokens where id = ${id} and user_id = ${repos.userId} returning id`);
  if (rows.length === 0) throw errors.notFound('FCM token');
}

/** FCM said the token is no longer registered: forget it, whoever's it is. */
export async function forget(em: EntityManager, id: string): Promise<void> {
  await (await dbOf(em)).all(sql`delete from fcm_tokens where id = ${id}`);
}
