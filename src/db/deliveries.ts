// Notification deliveries (one notification to one webhook endpoint or push subscription): the
// dispatcher's outbox, the delivery activity's reads and writes, and the delivery log.
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  FcmToken, Notification, NotificationDelivery, NotificationSettings, PushSubscription, WebhookEndpoint, type NotificationChannel,
  type NotificationKind,
} from './entities.ts';
import type { OwnedRepos } from './owned.ts';
import { plainRow } from './rows.ts';
import { dbOf, sql } from './sql.ts';
import { OUTBOX_CHANNEL } from './channels.ts';

export async function getDelivery(repos: OwnedRepos, id: string): Promise<NotificationDelivery> {
  return repos.get(NotificationDelivery, id, 'delivery');
}

/**
 * Sends one of the user's finished deliveries again: a new workflow (the dispatcher starts it),
 * the same webhook-id, so the receiver can tell it is the same notification. Null: still under way.
 */
export async function redeliver(repos: OwnedRepos, id: string): Promise<NotificationDelivery | null> {
  // Announced on the outbox channel (the dispatcher starts it now) by the statement that made it.
  const row = await (await dbOf(repos.root)).one(sql`with r as (update notification_deliveries
      set status = 'pending', redeliveries = redeliveries + 1, started_at = null, attempting_until = null, finished_at = null, not_before = null, updated_at = now()
    where id = ${id} and user_id = ${repos.userId} and status in ('succeeded', 'failed') returning *)
    select r.* from r cross join (select pg_notify(${OUTBOX_CHANNEL}, '') from r) n`);
  return row ? plainRow(repos.root, NotificationDelivery, row) : null;
}

export const deliveriesWhere = (endpointId: string, status?: string): Record<string, unknown> =>
  (status ? { endpointId, status } : { endpointId });

/** The deliveries of one of the user's notifications, every channel, oldest first. */
export async function ofNotification(repos: OwnedRepos, notificationId: string): Promise<NotificationDelivery[]> {
  return repos.find(NotificationDelivery, { notificationId }, { orderBy: { createdAt: 'asc', id: 'asc' } });
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
  subscriptions: PushSubscription[];
  fcmTokens: FcmToken[];
  settings: NotificationSettings[];
}

export interface NewDelivery {
  notificationId: string;
  userId: string;
  channel: NotificationChannel;
  endpointId: string | null;
  subscriptionId: string | null;
  fcmTokenId: string | null;
  /** Held until then (quiet hours). */
  notBefore: Date | null;
}

/**
 * Claims up to `limit` notifications nobody has dispatched (other nodes skip them meanwhile),
 * hands them with their users' targets and settings to `decide`, stores the deliveries it
 * answers and marks the notifications dispatched, in one transaction: a crash leaves them
 * undispatched, never half. Returns the deliveries it stored.
 */
export async function dispatch(em: EntityManager, limit: number, decide: (inputs: DispatchInputs) => NewDelivery[]): Promise<NotificationDelivery[]> {
  const db = await dbOf(em);
  // Three round trips whatever the batch (this runs as each run ends): the claim, the users'
  // targets and settings together, then the deliveries, the mark and the commit together.
  return db.transaction(async (tx) => {
    const [, claimed] = await tx.run(['begin', sql`select id, user_id, kind from notifications where dispatched_at is null
      order by created_at limit ${limit}::int for update skip locked`]);
    if (claimed.length === 0) {
      await tx.run(['commit']);
      return [];
    }
    const users = [...new Set(claimed.map((r) => r.user_id as string))];
    const [endpointRows, subscriptionRows, tokenRows, settingsRows] = await tx.run([
      sql`select * from webhook_endpoints where user_id = any(${users}::uuid[]) and enabled`,
      sql`select * from push_subscriptions where user_id = any(${users}::uuid[])`,
      sql`select * from fcm_tokens where user_id = any(${users}::uuid[])`,
      sql`select * from notification_settings where user_id = any(${users}::uuid[])`,
    ]);
    const notifications = claimed.map((r) => ({ id: r.id as string, userId: r.user_id as string, kind: r.kind as NotificationKind }));
    const deliveries = decide({
      notifications,
      endpoints: endpointRows.map((r) => plainRow(em, WebhookEndpoint, r)),
      subscriptions: subscriptionRows.map((r) => plainRow(em, PushSubscription, r)),
      fcmTokens: tokenRows.map((r) => plainRow(em, FcmToken, r)),
      settings: settingsRows.map((r) => plainRow(em, NotificationSettings, r)),
    });
    const col = <K extends keyof NewDelivery>(k: K) => deliveries.map((d) => d[k]);
    const [inserted] = await tx.run([
      ...(deliveries.length ? [sql`insert into notification_deliveries (id, user_id, notification_id, channel, endpoint_id, subscription_id, fcm_token_id, not_before, status)
        select gen_random_uuid(), d.user_id, d.notification_id, d.channel, d.endpoint_id, d.subscription_id, d.fcm_token_id, d.not_before, 'pending'
          from unnest(${col('userId')}::uuid[], ${col('notificationId')}::uuid[], ${col('channel')}::varchar[], ${col('endpointId')}::uuid[],
                      ${col('subscriptionId')}::uuid[], ${col('fcmTokenId')}::uuid[], ${col('notBefore')}::timestamptz[])
            as d (user_id, notification_id, channel, endpoint_id, subscription_id, fcm_token_id, not_before)
        on conflict do nothing returning *`] : []),
      sql`update notifications set dispatched_at = now() where id = any(${notifications.map((n) => n.id)}::uuid[])`,
      'commit',
    ]);
    return deliveries.length ? inserted.map((r) => plainRow(em, NotificationDelivery, r)) : [];
  });
}

/**
 * Pushes held for quiet hours that are now due, when a subscription has several: all but the
 * newest become `digested` into the newest, whose push then tells of them all. Returns how many
 * were folded into a digest.
 */
export async function foldDueDigests(em: EntityManager): Promise<number> {
  // Newest by the notification's time: a dispatch pass writes several deliveries at one instant.
  const rows = await (await dbOf(em)).all(sql`with due as (
      select d.id, row_number() over w as rank, first_value(d.id) over w as carrier
        from notification_deliveries d join notifications n on n.id = d.notification_id
       where d.status = 'pending' and d.started_at is null and d.not_before is not null and d.not_before <= now()
         and (d.subscription_id is not null or d.fcm_token_id is not null)
      window w as (partition by d.subscription_id, d.fcm_token_id order by n.created_at desc, n.id desc))
    update notification_deliveries d set status = 'digested', digest_id = due.carrier, finished_at = now(), updated_at = now()
      from due where d.id = due.id and due.rank > 1 returning d.id`);
  return rows.length;
}

/** Deliveries whose workflow is not started yet (new ones, redeliveries; held ones once due), oldest first. */
export async function unstarted(em: EntityManager, limit: number): Promise<NotificationDelivery[]> {
  const rows = await (await dbOf(em)).all(sql`select * from notification_deliveries
    where started_at is null and status = 'pending' and (not_before is null or not_before <= now()) order by created_at limit ${limit}::int`);
  return rows.map((r) => plainRow(em, NotificationDelivery, r));
}

export async function markStarted(em: EntityManager, id: string, redeliveries: number): Promise<void> {
  // Only the round it was started for: a redelivery asked for meanwhile still gets its own.
  await (await dbOf(em)).all(sql`update notification_deliveries set started_at = now() where id = ${id} and redeliveries = ${redeliveries}::int and started_at is null`);
}

// ---- the delivery activity -----------------------------------------------------------------

export interface DeliveryTarget {
  delivery: NotificationDelivery;
  notification: Notification;
  endpoint: WebhookEndpoint | null;
  subscription: PushSubscription | null;
  fcmToken: FcmToken | null;
  /** The notifications a digest carries besides its own, newest first. */
  digested: Notification[];
}

/** What one delivery needs; null when the delivery, its target or its notification is gone. */
export async function target(em: EntityManager, deliveryId: string): Promise<DeliveryTarget | null> {
  // One round trip: this read is on every delivery's path, between its start and its request.
  const row = await (await dbOf(em)).one(targetQuery(deliveryId));
  return row ? targetOfRow(em, row) : null;
}

const targetQuery = (deliveryId: string) => sql`select row_to_json(d) as delivery, row_to_json(n) as notification,
        row_to_json(e) as endpoint, row_to_json(s) as subscription, row_to_json(f) as fcm_token,
        (select coalesce(json_agg(dn order by dn.created_at desc, dn.id desc), '[]'::json)
           from notification_deliveries dd join notifications dn on dn.id = dd.notification_id
          where dd.digest_id = d.id) as digested
      from notification_deliveries d
      join notifications n on n.id = d.notification_id
      left join webhook_endpoints e on e.id = d.endpoint_id
      left join push_subscriptions s on s.id = d.subscription_id
      left join fcm_tokens f on f.id = d.fcm_token_id
     where d.id = ${deliveryId}`;

function targetOfRow(em: EntityManager, row: Record<string, unknown>): DeliveryTarget | null {
  if (!row.endpoint && !row.subscription && !row.fcm_token) return null;
  return {
    delivery: plainRow(em, NotificationDelivery, row.delivery as Record<string, unknown>),
    notification: plainRow(em, Notification, row.notification as Record<string, unknown>),
    endpoint: row.endpoint ? plainRow(em, WebhookEndpoint, row.endpoint as Record<string, unknown>) : null,
    subscription: row.subscription ? plainRow(em, PushSubscription, row.subscription as Record<string, unknown>) : null,
    fcmToken: row.fcm_token ? plainRow(em, FcmToken, row.fcm_token as Record<string, unknown>) : null,
    digested: (row.digested as Record<string, unknown>[]).map((r) => plainRow(em, Notification, r)),
  };
}

export interface PermitRules {
  /** Attempts one account may have in flight at once (DELIVERY_MAX_IN_FLIGHT_PER_ACCOUNT). */
  perAccount: number;
  /** How long a permit is held at most: the request's timeout and a margin; a worker lost mid-request leaves one that expires. */
  leaseMs: number;
}

/**
 * What an attempt that asks for a permit finds: its target (null: gone), with its account's
 * permit taken (`permit`, or false: every permit of the account is held by its other attempts
 * in flight and this one must wait). A delivery no longer pending takes none.
 */
export interface PermittedTarget {
  target: DeliveryTarget | null;
  permit: boolean;
}

/**
 * The delivery's target, and one of its account's permits for the attempt about to be made: one
 * round trip. The account's lock (a transaction-scoped advisory lock) makes the count and the
 * take one step across every worker, so the cap holds under any number of them.
 */
export async function targetWithPermit(em: EntityManager, deliveryId: string, rules: PermitRules): Promise<PermittedTarget> {
  const db = await dbOf(em);
  return db.transaction(async (tx) => {
    const [, , taken, [row]] = await tx.run([
      'begin',
      sql`select pg_advisory_xact_lock(hashtextextended('deliveries:' || user_id::text, 0)) from notification_deliveries where id = ${deliveryId}`,
      // A statement of its own after the lock: its snapshot sees every permit taken before.
      sql`update notification_deliveries d set attempting_until = now() + make_interval(secs => ${rules.leaseMs / 1000}::float8)
           where d.id = ${deliveryId} and d.status = 'pending'
             and (select count(*) from notification_deliveries o
                   where o.user_id = d.user_id and o.attempting_until > now() and o.id <> d.id) < ${rules.perAccount}::int
         returning d.id`,
      targetQuery(deliveryId),
      'commit',
    ]);
    return { target: row ? targetOfRow(em, row) : null, permit: taken.length > 0 };
  });
}

/** One attempt's outcome; a status other than pending settles the delivery. */
export async function recordAttempt(
  em: EntityManager, deliveryId: string,
  outcome: { statusCode: number | null; error: string | null; status: 'pending' | 'succeeded' | 'failed' },
): Promise<void> {
  await (await dbOf(em)).all(sql`update notification_deliveries
      set attempts = attempts + 1, attempting_until = null, last_status_code = ${outcome.statusCode}::int, last_error = ${outcome.error},
          status = ${outcome.status}, finished_at = case when ${outcome.status} = 'pending' then null else now() end, updated_at = now()
    where id = ${deliveryId}`);
}

/** The delivery gave up (its retries are spent, or its target is refused or gone). */
export async function markFailed(em: EntityManager, deliveryId: string, error: string): Promise<void> {
  await (await dbOf(em)).all(sql`update notification_deliveries
      set status = 'failed', attempting_until = null, last_error = coalesce(last_error, ${error}), finished_at = now(), updated_at = now()
    where id = ${deliveryId} and status = 'pending'`);
}
