// Webhook endpoints (a user's) and notification deliveries: the dispatcher's queue, the delivery
// activity's reads and writes, and the delivery log.
import type { EntityManager } from '@mikro-orm/postgresql';
import { errors } from '../errors.ts';
import {
  Notification, NotificationDelivery, NotificationSettings, WebhookEndpoint, type NotificationKind,
} from './entities.ts';
import type { OwnedRepos } from './owned.ts';
import { plainRow } from './rows.ts';
import { dbOf, sql } from './sql.ts';

// ---- endpoints (a user's) ------------------------------------------------------------------

export async function getEndpoint(repos: OwnedRepos, id: string): Promise<WebhookEndpoint> {
  return repos.get(WebhookEndpoint, id, 'webhook');
}

export async function insertEndpoint(repos: OwnedRepos, data: Pick<WebhookEndpoint, 'url' | 'secret' | 'kinds' | 'description'>): Promise<WebhookEndpoint> {
  const row = repos.create(WebhookEndpoint, { id: crypto.randomUUID(), enabled: true, ...data });
  await repos.em.persist(row).flush();
  return row;
}

export async function updateEndpoint(repos: OwnedRepos, id: string, patch: Partial<Pick<WebhookEndpoint, 'url' | 'kinds' | 'enabled' | 'description'>>) {
  const row = await getEndpoint(repos, id);
  repos.em.assign(row, patch);
  await repos.em.flush();
  return row;
}

export async function removeEndpoint(repos: OwnedRepos, id: string): Promise<void> {
  const rows = await (await dbOf(repos.root)).all(sql`delete from webhook_endpoints where id = ${id} and user_id = ${repos.userId} returning id`);
  if (rows.length === 0) throw errors.notFound('webhook');
}

export async function getDelivery(repos: OwnedRepos, id: string): Promise<NotificationDelivery> {
  return repos.get(NotificationDelivery, id, 'delivery');
}

/**
 * Sends one of the user's finished deliveries again: a new workflow (the dispatcher starts it),
 * the same webhook-id, so the receiver can tell it is the same notification. Null: still under way.
 */
export async function redeliver(repos: OwnedRepos, id: string): Promise<NotificationDelivery | null> {
  const db = await dbOf(repos.root);
  const row = await db.one(sql`update notification_deliveries
      set status = 'pending', redeliveries = redeliveries + 1, started_at = null, finished_at = null, updated_at = now()
    where id = ${id} and user_id = ${repos.userId} and status <> 'pending' returning *`);
  return row ? plainRow(repos.root, NotificationDelivery, row) : null;
}

// ---- the dispatcher ------------------------------------------------------------------------

export interface Undispatched {
  id: string;
  userId: string;
  kind: NotificationKind;
}

export interface DispatchInputs {
  notifications: Undispatched[];
  endpoints: WebhookEndpoint[];
  settings: NotificationSettings[];
}

/**
 * Claims up to `limit` notifications nobody has dispatched (other nodes skip them meanwhile),
 * hands them with their users' endpoints and settings to `decide`, stores the deliveries it
 * answers and marks the notifications dispatched, in one transaction: a crash leaves them
 * undispatched, never half.
 */
export async function dispatch(
  em: EntityManager, limit: number,
  decide: (inputs: DispatchInputs) => { notificationId: string; userId: string; endpointId: string }[],
): Promise<number> {
  const db = await dbOf(em);
  return db.transaction(async (tx) => {
    await tx.run(['begin']);
    const claimed = await tx.all(sql`select id, user_id, kind from notifications where dispatched_at is null
      order by created_at limit ${limit}::int for update skip locked`);
    if (claimed.length === 0) {
      await tx.run(['commit']);
      return 0;
    }
    const users = [...new Set(claimed.map((r) => r.user_id as string))];
    const endpoints = (await tx.all(sql`select * from webhook_endpoints where user_id = any(${users}::uuid[]) and enabled`))
      .map((r) => plainRow(em, WebhookEndpoint, r));
    const settings = (await tx.all(sql`select * from notification_settings where user_id = any(${users}::uuid[])`))
      .map((r) => plainRow(em, NotificationSettings, r));
    const notifications = claimed.map((r) => ({ id: r.id as string, userId: r.user_id as string, kind: r.kind as NotificationKind }));
    const deliveries = decide({ notifications, endpoints, settings });
    if (deliveries.length) {
      await tx.all(sql`insert into notification_deliveries (id, user_id, notification_id, channel, endpoint_id, status)
        select gen_random_uuid(), d.user_id, d.notification_id, 'webhook', d.endpoint_id, 'pending'
          from unnest(${deliveries.map((d) => d.userId)}::uuid[], ${deliveries.map((d) => d.notificationId)}::uuid[],
                      ${deliveries.map((d) => d.endpointId)}::uuid[]) as d (user_id, notification_id, endpoint_id)
        on conflict (notification_id, endpoint_id) where endpoint_id is not null do nothing`);
    }
    await tx.all(sql`update notifications set dispatched_at = now() where id = any(${notifications.map((n) => n.id)}::uuid[])`);
    await tx.run(['commit']);
    return deliveries.length;
  });
}

/** Deliveries whose workflow is not started yet (new ones, redeliveries), oldest first. */
export async function unstarted(em: EntityManager, limit: number): Promise<NotificationDelivery[]> {
  const rows = await (await dbOf(em)).all(sql`select * from notification_deliveries where started_at is null order by created_at limit ${limit}::int`);
  return rows.map((r) => plainRow(em, NotificationDelivery, r));
}

export async function markStarted(em: EntityManager, id: string, redeliveries: number): Promise<void> {
  // Only the round it was started for: a redelivery asked for meanwhile still gets its own.
  await (await dbOf(em)).all(sql`update notification_deliveries set started_at = now() where id = ${id} and redeliveries = ${redeliveries}::int and started_at is null`);
}

// ---- the delivery activity -----------------------------------------------------------------

export interface DeliveryTarget {
  delivery: NotificationDelivery;
  endpoint: WebhookEndpoint;
  notification: Notification;
}

/** What one delivery needs; null when the delivery, its endpoint or its notification is gone. */
export async function target(em: EntityManager, deliveryId: string): Promise<DeliveryTarget | null> {
  const row = await (await dbOf(em)).one(sql`select row_to_json(d) as delivery, row_to_json(e) as endpoint, row_to_json(n) as notification
      from notification_deliveries d
      join webhook_endpoints e on e.id = d.endpoint_id
      join notifications n on n.id = d.notification_id
     where d.id = ${deliveryId}`);
  if (!row) return null;
  return {
    delivery: plainRow(em, NotificationDelivery, row.delivery as Record<string, unknown>),
    endpoint: plainRow(em, WebhookEndpoint, row.endpoint as Record<string, unknown>),
    notification: plainRow(em, Notification, row.notification as Record<string, unknown>),
  };
}

/** One HTTP attempt's outcome; `final`: the delivery's status is settled by it. */
export async function recordAttempt(
  em: EntityManager, deliveryId: string,
  outcome: { statusCode: number | null; error: string | null; status: 'pending' | 'succeeded' | 'failed' },
): Promise<void> {
  await (await dbOf(em)).all(sql`update notification_deliveries
      set attempts = attempts + 1, last_status_code = ${outcome.statusCode}::int, last_error = ${outcome.error},
          status = ${outcome.status}, finished_at = case when ${outcome.status} = 'pending' then null else now() end, updated_at = now()
    where id = ${deliveryId}`);
}

/** The delivery gave up (its retries are spent, or its target is refused). */
export async function markFailed(em: EntityManager, deliveryId: string, error: string): Promise<void> {
  await (await dbOf(em)).all(sql`update notification_deliveries
      set status = 'failed', last_error = coalesce(last_error, ${error}), finished_at = now(), updated_at = now()
    where id = ${deliveryId} and status = 'pending'`);
}

export const deliveriesWhere = (endpointId: string, status?: string): Record<string, unknown> =>
  (status ? { endpointId, status } : { endpointId });
