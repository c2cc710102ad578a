// From a stored notification to its deliveries: the dispatcher claims notifications not yet
// dispatched, decides per the user's settings and webhook endpoints which deliveries they get
// (in the same transaction that marks them dispatched), then starts one Temporal workflow per
// delivery. Every API node runs it; PostgreSQL is the outbox, so a crash anywhere loses nothing:
// an undispatched notification or an unstarted delivery is simply picked up by the next pass.
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { NotificationDelivery } from '../db/entities.ts';
import type { Orm } from '../db/orm.ts';
import type { Logger } from '../logger.ts';
import * as webhooksDb from '../db/webhooks.ts';
import type { DeliveryRetry, notificationDeliveryWorkflow } from '../../workflows/notification-delivery.ts';
import { decide, resolveSettings } from './notification-settings.ts';

export const DELIVERY_WORKFLOW = 'notificationDeliveryWorkflow';
/** Notifications claimed, and deliveries started, per pass. */
const BATCH = 200;

/** Which of the user's endpoints get each notification: enabled, listening for its kind, allowed by the settings. */
export function decideDeliveries({ notifications, endpoints, settings }: webhooksDb.DispatchInputs, now = new Date()) {
  const settingsOf = new Map(settings.map((s) => [s.userId, resolveSettings(s)]));
  const out: { notificationId: string; userId: string; endpointId: string }[] = [];
  for (const n of notifications) {
    if (decide(settingsOf.get(n.userId) ?? resolveSettings(null), n.kind, 'webhook', now) !== 'send') continue;
    for (const e of endpoints) {
      if (e.userId !== n.userId || !e.enabled) continue;
      if (e.kinds.length > 0 && !e.kinds.includes(n.kind)) continue;
      out.push({ notificationId: n.id, userId: n.userId, endpointId: e.id });
    }
  }
  return out;
}

/**
 * The delivery's workflow id: the notification, the channel and the target, so starting it
 * twice is refused by Temporal; each redelivery is a round of its own.
 */
export function deliveryWorkflowId(d: Pick<NotificationDelivery, 'notificationId' | 'channel' | 'endpointId' | 'redeliveries'>): string {
  const base = `notification-${d.notificationId}-${d.channel}-${d.endpointId}`;
  return d.redeliveries > 0 ? `${base}-r${d.redeliveries}` : base;
}

export interface DispatcherOptions {
  orm: Orm;
  temporal: Client;
  taskQueue: string;
  logger: Logger;
  retry: DeliveryRetry;
  intervalMs: number;
}

/** One pass: dispatch what is new, start what is not started. How many workflows it started. */
export async function dispatchOnce({ orm, temporal, taskQueue, retry }: Omit<DispatcherOptions, 'logger' | 'intervalMs'>): Promise<number> {
  const em = orm.em.fork();
  // A batch per pass: a backlog drains over the next passes.
  await webhooksDb.dispatch(em, BATCH, (inputs) => decideDeliveries(inputs));
  let started = 0;
  for (const d of await webhooksDb.unstarted(em, BATCH)) {
    try {
      await temporal.workflow.start<typeof notificationDeliveryWorkflow>(DELIVERY_WORKFLOW, {
        workflowId: deliveryWorkflowId(d),
        taskQueue,
        args: [{ deliveryId: d.id, retry }],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
      started++;
    } catch (err) {
      // Started before (by another node, or before a crash that kept it from being marked).
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    await webhooksDb.markStarted(em, d.id, d.redeliveries);
  }
  return started;
}

/** Runs a pass every `intervalMs` until stopped. */
export function startDispatcher(opts: DispatcherOptions): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = dispatchOnce(opts)
      .then((n) => { if (n) opts.logger.debug({ started: n }, 'notification deliveries started'); })
      .catch((err: unknown) => opts.logger.warn({ err }, 'notification dispatch failed'))
      .finally(() => { if (!stopped) timer = setTimeout(tick, opts.intervalMs); });
  };
  timer = setTimeout(tick, opts.intervalMs);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
