// A user's notifications: written by the run mirror beside the events that cause them (one per
// event, whatever retries do), listed, counted and marked read over REST, read by the user feed.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Notification, type NotificationKind } from './entities.ts';
import type { OwnedRepos } from './owned.ts';
import { plainRow } from './rows.ts';
import { NOTIFICATIONS_CHANNEL, OUTBOX_CHANNEL } from './channels.ts';
import { dbOf, join, sql, type Sql } from './sql.ts';
import type { UserScope } from './scope.ts';

/** What the domain decides of a notification; the statement adds the task's ids and names. */
export interface NotificationDraft {
  /** The run event that causes it. */
  seq: number;
  kind: NotificationKind;
  title: string;
  body: string | null;
  /** When the thing it asks for stops being possible (an approval's timeout), if ever. */
  expiresAt: Date | null;
}

/**
 * Stores the notifications of one task's run events, naming the task's workflow and device as
 * they are now. Run in the transaction that folds the events; `(task_id, seq)` is unique, so a
 * batch applied again writes nothing.
 */
export function insertForRun(scope: UserScope, taskId: string, drafts: readonly NotificationDraft[]): Sql {
  const values = join(drafts.map((n) =>
    sql`(${crypto.randomUUID()}::uuid, ${n.seq}::int, ${n.kind}::varchar, ${n.title}::varchar, ${n.body}::text, ${n.expiresAt}::timestamptz)`));
  // created_at in milliseconds, as JavaScript dates (and so the list's keyset cursor) hold it: a
  // row a microsecond past its cursor would be skipped by the next page.
  // A user with no channel to deliver to (no enabled webhook, no push subscription, no FCM
  // token) gets no delivery whatever the settings say: the row goes in dispatched, so that no
  // dispatcher pass claims it and no second write of the row (a new version and an entry in
  // each of its indexes) marks it so. A target added as the run ends may miss the notification
  // either way: before, it depended on whether the pass came before the target was saved.
  // The rows left to dispatch are announced on the outbox channel, so the dispatcher sends them now.
  return sql`with ins as (insert into notifications (id, user_id, kind, title, body, task_id, seq, workflow_id, workflow_name, device_id, device_name, expires_at, created_at, dispatched_at)
    select v.id, t.user_id, v.kind, left(coalesce(w.name || ': ', '') || v.title, 255), v.body, t.id, v.seq, t.workflow_id, w.name,
           t.device_id, d.device_name, v.expires_at, date_trunc('milliseconds', now()),
           case when exists (select 1 from webhook_endpoints e where e.user_id = t.user_id and e.enabled)
                  or exists (select 1 from push_subscriptions p where p.user_id = t.user_id)
                  or exists (select 1 from fcm_tokens f where f.user_id = t.user_id) then null else now() end
      from (values ${values}) as v (id, seq, kind, title, body, expires_at)
      join tasks t on t.id = ${taskId} and t.user_id = ${scope.userId}
      left join workflows w on w.id = t.workflow_id
      left join devices d on d.id = t.device_id
    on conflict (task_id, seq, kind) where task_id is not null do nothing
    returning dispatched_at)
    select pg_notify(${OUTBOX_CHANNEL}, '') from ins where dispatched_at is null limit 1`;
}

/**
 * Writes an approval.expiring beside each approval.requested whose reminder is due: its
 * approval times out within `leadMs` (or within half its window, when that is shorter: a
 * short approval is not reminded of the moment it is asked) and the run still waits for it.
 * For every user at once (a sweep, not a request); idempotent by the unique key, so API nodes
 * may all run it. Each new one is announced at commit on NOTIFICATIONS_CHANNEL (the feeds) and
 * OUTBOX_CHANNEL (the dispatchers), as every statement that stores a notification does. Returns
 * how many it wrote.
 */
export async function insertApprovalReminders(em: EntityManager, leadMs: number, title: string): Promise<number> {
  const rows = await (await dbOf(em)).all(sql`with due as (
      select n.* from notifications n
       where n.kind = 'approval.requested' and n.expires_at > now()
         and n.expires_at - least(${leadMs}::int * interval '1 millisecond', (n.expires_at - n.created_at) / 2) <= now()
         -- the run still waits for this approval: no decision or end logged after the request
         and not exists (select 1 from task_events e where e.task_id = n.task_id and e.seq > n.seq
                          and e.kind in ('run.approval_decided', 'run.completed', 'run.failed', 'run.cancelled'))),
    ins as (
      insert into notifications (id, user_id, kind, title, body, task_id, seq, workflow_id, workflow_name, device_id, device_name, expires_at, created_at)
      select gen_random_uuid(), due.user_id, 'approval.expiring', left(coalesce(due.workflow_name || ': ', '') || ${title}, 255), due.body,
             due.task_id, due.seq, due.workflow_id, due.workflow_name, due.device_id, due.device_name, due.expires_at, date_trunc('milliseconds', now())
        from due
      on conflict (task_id, seq, kind) where task_id is not null do nothing
      returning user_id, id)
    select pg_notify(${NOTIFICATIONS_CHANNEL}, json_build_object('user_id', user_id, 'id', id)::text), pg_notify(${OUTBOX_CHANNEL}, '') from ins`);
  return rows.length;
}

/** One of the user's notifications by id, or null. */
export async function byId(em: EntityManager, scope: UserScope, id: string): Promise<Notification | null> {
  const row = await (await dbOf(em)).one(sql`select * from notifications where id = ${id} and user_id = ${scope.userId}`);
  return row ? plainRow(em, Notification, row) : null;
}

/** The notifications of a task's events with seq in (fromSeq, toSeq], in seq order. */
export async function ofTaskEvents(em: EntityManager, scope: UserScope, taskId: string, fromSeq: number, toSeq: number): Promise<Notification[]> {
  const rows = await (await dbOf(em)).prepared(sql`select * from notifications
    where task_id = ${taskId} and user_id = ${scope.userId} and seq > ${fromSeq}::int and seq <= ${toSeq}::int order by seq`);
  return rows.map((r) => plainRow(em, Notification, r));
}

/** One of the user's notifications (404 when it is not). */
export async function get(repos: OwnedRepos, id: string): Promise<Notification> {
  return repos.get(Notification, id, 'notification');
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
