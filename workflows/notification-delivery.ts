// notificationDeliveryWorkflow: one notification to one target (a webhook endpoint), with
// Temporal's retries and backoff. Started by the dispatcher with an id made of the notification,
// channel and target (src/domain/notification-dispatch.ts), so a crash of an API node or worker
// loses no delivery and a start repeated after one never makes a second delivery.
import { ActivityFailure, ApplicationFailure, type ActivityOptions, patched, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { DeliveryActivities } from '../activities/types.ts';

export interface DeliveryRetry {
  maximumAttempts: number;
  initialIntervalMs: number;
  maximumIntervalMs: number;
}

export interface NotificationDeliveryInput {
  deliveryId: string;
  retry: DeliveryRetry;
  /**
   * Send through a local activity (the `local-delivery` change), as the dispatcher says: such a
   * delivery asks no `patched('local-delivery')`, so its history has no marker and no
   * TemporalChangeVersion update. Deliveries without the field ask `patched()`.
   */
  local?: true;
}

/**
 * A local activity's retry whose backoff is longer than this waits on a durable timer; a shorter
 * one is waited out by the SDK with the workflow task held open, holding one of the worker's
 * workflow task slots the whole time: deliveries retrying against dead receivers would hold them
 * all and every other workflow task on the worker would wait.
 */
const LOCAL_RETRY_THRESHOLD = '1s';

/** Thrown by the activity for a target that must never be tried (SSRF protection): no retry. */
export const TARGET_REFUSED = 'TargetRefused';

export async function notificationDeliveryWorkflow(input: NotificationDeliveryInput): Promise<'succeeded' | 'failed'> {
  const options: ActivityOptions = {
    startToCloseTimeout: '1 minute',
    retry: {
      maximumAttempts: input.retry.maximumAttempts,
      initialInterval: input.retry.initialIntervalMs,
      maximumInterval: input.retry.maximumIntervalMs,
      backoffCoefficient: 2,
      nonRetryableErrorTypes: [TARGET_REFUSED],
    },
  };
  // A local activity: the request goes out from the worker holding the workflow's first task,
  // with no activity task scheduled, matched and polled (the larger part of a notification's
  // latency after its run ends). Retries keep their backoff: the SDK waits out short ones and
  // takes a durable timer for those past a minute; a worker lost mid-request leaves the workflow
  // task to time out and the request is made again under the same webhook-id, as before.
  const { deliverNotification } = input.local === true || patched('local-delivery')
    ? proxyLocalActivities<DeliveryActivities>({ ...options, localRetryThreshold: LOCAL_RETRY_THRESHOLD })
    : proxyActivities<DeliveryActivities>(options);
  // Recording the outcome must not be lost to a database blip: retried until it lands.
  const { failDelivery } = proxyActivities<DeliveryActivities>({
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1s', maximumInterval: '1 minute' },
  });
  try {
    await deliverNotification({ deliveryId: input.deliveryId });
    return 'succeeded';
  } catch (err) {
    // A local activity's last failure reaches the workflow as its own ApplicationFailure, an
    // activity task's wrapped in an ActivityFailure.
    let cause: string;
    if (err instanceof ActivityFailure) cause = err.cause instanceof Error ? err.cause.message : 'delivery failed';
    else if (err instanceof ApplicationFailure) cause = err.message;
    else throw err;
    await failDelivery({ deliveryId: input.deliveryId, error: cause });
    return 'failed';
  }
}
