// Delivery activities, run by the task workers: one webhook request per attempt, its outcome in
// the delivery log. Temporal retries a failed attempt with backoff (workflows/notification-delivery.ts).
import { ApplicationFailure } from '@temporalio/activity';
import type { Orm } from '../src/db/orm.ts';
import * as webhooksDb from '../src/db/webhooks.ts';
import { sendWebhook } from '../src/domain/webhook-delivery.ts';
import { TargetRefused } from '../src/domain/webhook-targets.ts';
import { TARGET_REFUSED } from '../workflows/notification-delivery.ts';
import type { DeliveryActivities } from './types.ts';

export interface DeliveryDeps {
  orm: Orm;
  timeoutMs: number;
  /** Let webhooks reach loopback, private and link-local addresses (WEBHOOK_ALLOW_PRIVATE_TARGETS). */
  allowPrivateTargets: boolean;
}

export function createDeliveryActivities({ orm, timeoutMs, allowPrivateTargets }: DeliveryDeps): DeliveryActivities {
  return {
    async deliverNotification({ deliveryId }) {
      const em = orm.em.fork();
      const t = await webhooksDb.target(em, deliveryId);
      // Deleted with its endpoint, notification or user meanwhile: nothing left to deliver.
      if (!t) return { skipped: 'delivery, endpoint or notification deleted' };
      if (t.delivery.status === 'succeeded') return { skipped: 'delivered already' };
      let answer;
      try {
        answer = await sendWebhook({ url: t.endpoint.url, secret: t.endpoint.secret, notification: t.notification, timeoutMs, allowPrivate: allowPrivateTargets });
      } catch (err) {
        const message = (err as Error).message;
        const refused = err instanceof TargetRefused || (err as { code?: string }).code === 'EADDRNOTALLOWED';
        await webhooksDb.recordAttempt(em, deliveryId, { statusCode: null, error: message, status: refused ? 'failed' : 'pending' });
        if (refused) throw ApplicationFailure.nonRetryable(message, TARGET_REFUSED);
        throw ApplicationFailure.retryable(message, 'DeliveryFailed');
      }
      const ok = answer.statusCode >= 200 && answer.statusCode < 300;
      const error = ok ? null : `HTTP ${answer.statusCode}${answer.text ? `: ${answer.text.slice(0, 500)}` : ''}`;
      await webhooksDb.recordAttempt(em, deliveryId, { statusCode: answer.statusCode, error, status: ok ? 'succeeded' : 'pending' });
      if (!ok) throw ApplicationFailure.retryable(error!, 'DeliveryFailed');
      return { statusCode: answer.statusCode };
    },

    async failDelivery({ deliveryId, error }) {
      await webhooksDb.markFailed(orm.em.fork(), deliveryId, error);
    },
  };
}
