// notificationDeliveryWorkflow: one notification to one target (a webhook endpoint), with
// Temporal's retries and backoff. Started by the dispatcher with an id made of the notification,
// channel and target (src/domain/notification-dispatch.ts), so a crash of an API node or worker
// loses no delivery and a start repeated after one never makes a second delivery.
import {
  ActivityFailure, ApplicationFailure, CancelledFailure, TemporalFailure, type ActivityOptions, patched, proxyActivities, proxyLocalActivities, sleep,
} from '@temporalio/workflow';
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
  /**
   * Each attempt first takes one of its account's permits (the `delivery-permits` change, decided
   * by the dispatcher like `local`), and the workflow spaces its attempts itself: an attempt that
   * finds every permit held makes no request and is not counted.
   */
  permits?: true;
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

/** Marks the delivery failed. Recording the outcome must not be lost to a database blip: retried until it lands. */
function failDelivery(input: { deliveryId: string; error: string }): Promise<void> {
  return proxyActivities<DeliveryActivities>({
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1s', maximumInterval: '1 minute' },
  }).failDelivery(input);
}

/**
 * A delivery whose account's permits are all held asks again after this, doubling up to the
 * maximum: a burst of an account's own deliveries gets in within a few seconds, and deliveries
 * waiting behind receivers that hang cost the worker one short task each per maximum.
 */
const PERMIT_WAIT_FIRST_MS = 250;
const PERMIT_WAIT_MAX_MS = 30_000;

export async function notificationDeliveryWorkflow(input: NotificationDeliveryInput): Promise<'succeeded' | 'failed'> {
  if (input.permits) return deliverWithPermits(input);
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

/**
 * Up to `maximumAttempts` attempts, each behind one of the account's permits (so one account's
 * receivers that hang hold at most that many of the deliveries worker's workflow task slots:
 * docs/reliability.md, hostile tenant), spaced by the retry policy's backoff on durable timers.
 * The loop is the workflow's rather than the activity's retry policy because a wait for a permit
 * is not an attempt and must not spend one.
 */
async function deliverWithPermits({ deliveryId, retry }: NotificationDeliveryInput): Promise<'succeeded' | 'failed'> {
  const { deliverNotification } = proxyLocalActivities<DeliveryActivities>({
    startToCloseTimeout: '1 minute',
    retry: { maximumAttempts: 1 },
  });
  let waits = 0;
  let lastError = 'delivery failed';
  for (let attempt = 1; attempt <= retry.maximumAttempts;) {
    try {
      const answer = await deliverNotification({ deliveryId, permit: true });
      if (!('waiting' in answer)) return 'succeeded';
      // Jittered, so an account's waiting deliveries do not all ask again at one instant.
      const wait = Math.min(PERMIT_WAIT_FIRST_MS * 2 ** waits, PERMIT_WAIT_MAX_MS);
      waits += 1;
      await sleep(Math.round(wait * (0.75 + Math.random() * 0.5)));
      continue;
    } catch (err) {
      if (err instanceof CancelledFailure || !(err instanceof TemporalFailure)) throw err;
      const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
      lastError = cause.message || lastError;
      if (cause instanceof ApplicationFailure && (cause.nonRetryable || cause.type === TARGET_REFUSED)) break;
    }
    if (attempt === retry.maximumAttempts) break;
    await sleep(Math.min(retry.initialIntervalMs * 2 ** (attempt - 1), retry.maximumIntervalMs));
    attempt += 1;
    waits = 0;
  }
  await failDelivery({ deliveryId, error: lastError });
  return 'failed';
}
