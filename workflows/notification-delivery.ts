// notificationDeliveryWorkflow: one notification to one target (a webhook endpoint), with
// Temporal's retries and backoff. Started by the dispatcher with an id made of the notification,
// channel and target (src/domain/notification-dispatch.ts), so a crash of an API node or worker
// loses no delivery and a start repeated after one never makes a second delivery.
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { DeliveryActivities } from '../activities/types.ts';

export interface DeliveryRetry {
  maximumAttempts: number;
  initialIntervalMs: number;
  maximumIntervalMs: number;
}

export interface NotificationDeliveryInput {
  deliveryId: string;
  retry: DeliveryRetry;
}

/** Thrown by the activity for a target that must never be tried (SSRF protection): no retry. */
export const TARGET_REFUSED = 'TargetRefused';

export async function notificationDeliveryWorkflow(input: NotificationDeliveryInput): Promise<'succeeded' | 'failed'> {
  const { deliverNotification } = proxyActivities<DeliveryActivities>({
    startToCloseTimeout: '1 minute',
    retry: {
      maximumAttempts: input.retry.maximumAttempts,
      initialInterval: input.retry.initialIntervalMs,
      maximumInterval: input.retry.maximumIntervalMs,
      backoffCoefficient: 2,
      nonRetryableErrorTypes: [TARGET_REFUSED],
    },
  });
  // Recording the outcome must not be lost to a database blip: retried until it lands.
  const { failDelivery } = proxyActivities<DeliveryActivities>({
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1s', maximumInterval: '1 minute' },
  });
  try {
    await deliverNotification({ deliveryId: input.deliveryId });
    return 'succeeded';
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const cause = err.cause instanceof ApplicationFailure || err.cause instanceof Error ? err.cause.message : 'delivery failed';
    await failDelivery({ deliveryId: input.deliveryId, error: cause });
    return 'failed';
  }
}
