// A user's notification settings: one row per user, none until they first save some.
import { NotificationSettings, type ChannelSettings, type QuietHours } from './entities.ts';
import type { OwnedRepos } from './owned.ts';
import { plainRow } from './rows.ts';
import { dbOf, jsonb, sql } from './sql.ts';

export async function get(repos: OwnedRepos): Promise<NotificationSettings | null> {
  const row = await (await dbOf(repos.root)).one(sql`select * from notification_settings where user_id = ${repos.userId}`);
  return row ? plainRow(repos.root, NotificationSettings, row) : null;
}

/** Replaces the user's settings (creating the row on first save); returns them as stored. */
export async function put(repos: OwnedRepos, channels: ChannelSettings, quietHours: QuietHours | null): Promise<NotificationSettings> {
  const row = await (await dbOf(repos.root)).one(sql`insert into notification_settings (user_id, channels, quiet_hours, updated_at)
    values (${repos.userId}, ${jsonb(channels)}, ${jsonb(quietHours)}, date_trunc('milliseconds', now()))
    on conflict (user_id) do update set channels = excluded.channels, quiet_hours = excluded.quiet_hours, updated_at = excluded.updated_at
    returning *`);
  return plainRow(repos.root, NotificationSettings, row!);
}
