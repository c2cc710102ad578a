// Delivery activities, run by the task workers: one request per attempt (a webhook, a Web Push),
// its outcome in the delivery log. Temporal retries a failed attempt with backoff
// (workflows/notification-delivery.ts).
import { ApplicationFailure } from '@temporalio/activity';
import type { Orm } from '../src/db/orm.ts';
import * as deliveriesDb from '../src/db/deliveries.ts';
import * as subscriptionsDb from '../src/db/push-subscriptions.ts';
import type { Answer } from '../src/domain/outbound-http.ts';
import { sendWebPush, type VapidKeys } from '../src/domain/web-push.ts';
import * as fcmTokensDb from '../src/db/fcm-tokens.ts';
import { FcmSender, isUnregistered, type FcmSettings } from '../src/domain/fcm.ts';
import { sendWebhook } from '../src/domain/webhook-delivery.ts';
import { TargetRefused } from '../src/domain/webhook-targets.ts';
import { TARGET_REFUSED } from '../workflows/notification-delivery.ts';
import type { DeliveryActivities } from './types.ts';

export interface DeliveryDeps {
  orm: Orm;
  timeoutMs: number;
  /** Let webhooks reach loopback, private and link-local addresses (WEBHOOK_ALLOW_PRIVATE_TARGETS). */
  allowPrivateTargets: boolean;
  /** Null: Web Push is off (its deliveries fail at once). */
  vapid: VapidKeys | null;
  /** Null: FCM is off (its deliveries fail at once). */
  fcm: FcmSettings | null;
  /** Attempts one account may have in flight at once (DELIVERY_MAX_IN_FLIGHT_PER_ACCOUNT). */
  perAccountInFlight: number;
}

/** A permit outlives its request's timeout by this much: the attempt's outcome is written after it. */
const PERMIT_MARGIN_MS = 5_000;

export function createDeliveryActivities({ orm, timeoutMs, allowPrivateTargets, vapid, fcm, perAccountInFlight }: DeliveryDeps): DeliveryActivities {
  // One sender per worker: it keeps the access token until it expires.
  const fcmSender = fcm ? new FcmSender(fcm) : null;
  return {
    async deliverNotification({ deliveryId, permit }) {
      const em = orm.em.fork();
      let t: deliveriesDb.DeliveryTarget | null;
      if (permit) {
        const found = await deliveriesDb.targetWithPermit(em, deliveryId, { perAccount: perAccountInFlight, leaseMs: timeoutMs + PERMIT_MARGIN_MS });
        t = found.target;
        // Its account's other attempts hold every permit: no request, the workflow waits and asks again.
        if (t && t.delivery.status === 'pending' && !found.permit) return { waiting: true };
      } else {
        t = await deliveriesDb.target(em, deliveryId);
      }
      // Deleted with its target, notification or user meanwhile: nothing left to deliver.
      if (!t) return { skipped: 'delivery, target or notification deleted' };
      if (t.delivery.status !== 'pending') return { skipped: `the delivery is ${t.delivery.status}` };
      const opts = { timeoutMs, allowPrivate: allowPrivateTargets };
      let answer: Answer;
      try {
        if (t.endpoint) {
          answer = await sendWebhook({ ...opts, url: t.endpoint.url, secret: t.endpoint.secret, notification: t.notification });
        } else if (t.subscription) {
          if (!vapid) throw ApplicationFailure.nonRetryable('Web Push is not configured (VAPID keys)', TARGET_REFUSED);
          answer = await sendWebPush({ ...opts, subscription: t.subscription, notification: t.notification, digested: t.digested, vapid });
        } else {
          if (!fcmSender) throw ApplicationFailure.nonRetryable('FCM is not configured (FCM_CREDENTIALS_FILE)', TARGET_REFUSED);
          answer = await fcmSender.send(t.fcmToken!.token, t.notification, t.digested, timeoutMs);
        }
      } catch (err) {
        const message = (err as Error).message;
        const refused = err instanceof TargetRefused || (err as { code?: string }).code === 'EADDRNOTALLOWED' || (err as { type?: string }).type === TARGET_REFUSED;
        await deliveriesDb.recordAttempt(em, deliveryId, { statusCode: null, error: message, status: refused ? 'failed' : 'pending' });
        if (refused) throw ApplicationFailure.nonRetryable(message, TARGET_REFUSED);
        throw ApplicationFailure.retryable(message, 'DeliveryFailed');
      }
      const ok = answer.statusCode >= 200 && answer.statusCode < 300;
      const error = ok ? null : `HTTP ${answer.statusCode}${answer.text ? `: ${answer.text.slice(0, 500)}` : ''}`;
      // A push service's 404 or 410 (the browser unsubscribed), FCM's UNREGISTERED (the app is
      // gone): forget the target; retrying cannot help.
      const gone = !ok && ((t.subscription !== null && (answer.statusCode === 404 || answer.statusCode === 410)) || (t.fcmToken !== null && isUnregistered(answer)));
      await deliveriesDb.recordAttempt(em, deliveryId, { statusCode: answer.statusCode, error, status: ok ? 'succeeded' : gone ? 'failed' : 'pending' });
      if (gone) {
        if (t.subscription) await subscriptionsDb.forget(em, t.subscription.id);
        if (t.fcmToken) await fcmTokensDb.forget(em, t.fcmToken.id);
        throw ApplicationFailure.nonRetryable(error!, TARGET_REFUSED);
      }
      if (!ok) throw ApplicationFailure.retryable(error!, 'DeliveryFailed');
      return { statusCode: answer.statusCode };
    },

    async failDelivery({ deliveryId, error }) {
      await deliveriesDb.markFailed(orm.em.fork(), deliveryId, error);
    },
  };
}
