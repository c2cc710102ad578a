// A user's notifications: written by the run mirror beside the events that cause them (one per
// event, whatever retries do), listed, counted and marked read over REST, read by the user feed.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Notification, type NotificationKind } from './entities.ts';
import type { OwnedRepos } from './owned.ts';
import { plainRow } from './rows.ts';
import { dbOf, join, sql, type Sql } from './sql.ts';
import type { UserScope } from './scope.ts';

/** What the domain decides of a notification; the statement adds the task's ids and names. */
export interface NotificationDraft {
  /** The run event that causes it. */
  seq: number;
  kind: NotificationKind;
  title: string;
  body: string | null;
}

/**
 * Stores the notifications of one task's run events, naming the task's workflow and device as
 * they are now. Run in the transaction that folds the events; `(task_id, seq)` is unique, so a
 * batch applied again writes nothing.
 */
export function insertForRun(scope: UserScope, taskId: string, drafts: readonly NotificationDraft[]): Sql {
  const values = join(drafts.map((n) => sql`(${crypto.randomUUID()}::uuid, ${n.seq}::int, ${n.kind}::varchar, ${n.title}::varchar, ${n.body}::text)`));
  // created_at in milliseconds, as JavaScript dates (and so the list's keyset cursor) hold it: a
  // row a microsecond past its cursor would be skipped by the next page.
  return sql`insert into notifications (id, user_id, kind, title, body, task_id, seq, workflow_id, workflow_name, device_id, device_name, created_at)
    select v.id, t.user_id, v.kind, left(coalesce(w.name || ': ', '') || v.title, 255), v.body, t.id, v.seq, t.workflow_id, w.name,
           t.device_id, d.device_name, date_trunc('milliseconds', now())
      from (values ${values}) as v (id, seq, kind, title, body)
      join tasks t on t.id = ${taskId} and t.user_id = ${scope.userId}
      left join workflows w on w.id = t.workflow_id
      left join devices d on d.id = t.device_id
    on conflict (task_id, seq) where task_id is not null do nothing`;
}

/** The notifications of a task's events with seq in (fromSeq, toSeq], in seq order. */
export async function ofTaskEvents(em: EntityManager, scope: UserScope, taskId: string, fromSeq: number, toSeq: number): Promise<Notification[]> {
  const rows = await (await dbOf(em)).prepared(sql`select * from notifications
    where task_id = ${taskId} and user_id = ${scope.userId} and seq > ${fromSeq}::int and seq <= ${toSeq}::int order by seq`);
  return rows.map((r) => plainRow(em, Notification, r));
}

/** The list's filter, under the user's scope. */
export function where(filter: { unread?: boolean }): Record<string, unknown> {
  return filter.unread ? { readAt: null } : {};
}

/** Marks the user's unread notifications among `ids` (all of them: 'all') read; how many it marked. */
export async function markRead(repos: OwnedRepos, ids: readonly string[] | 'all'): Promise<number> {
  const db = await dbOf(repos.root);
  const which = ids === 'all' ? sql`true` : sql`id = any(${[...ids]}::uuid[])`;
  const rows = await db.all(sql`update notifications set read_at = now()
    where user_id = ${repos.userId} and read_at is null and ${which} returning id`);
  return rows.length;
}

export async function unreadCount(repos: OwnedRepos): Promise<number> {
  return repos.count(Notification, { readAt: null });
}
