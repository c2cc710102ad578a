// From a stored notification to its deliveries: the dispatcher claims notifications not yet
// dispatched, decides per the user's settings, webhook endpoints and push subscriptions which
// deliveries they get (in the same transaction that marks them dispatched; a push in quiet hours
// is held until they end, then goes out in one digest), then starts one Temporal workflow per
// delivery. Every API node runs it; PostgreSQL is the outbox, so a crash anywhere loses nothing:
// an undispatched notification or an unstarted delivery is simply picked up by the next pass.
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { NotificationDelivery } from '../db/entities.ts';
import type { Orm } from '../db/orm.ts';
import type { Logger } from '../logger.ts';
import * as deliveriesDb from '../db/deliveries.ts';
import type { DeliveryRetry, notificationDeliveryWorkflow } from '../../workflows/notification-delivery.ts';
import { decide, quietHoursEnd, resolveSettings } from './notification-settings.ts';

export const DELIVERY_WORKFLOW = 'notificationDeliveryWorkflow';
/** The task queue of the delivery workflows: the task workers' second worker (src/task-worker.ts). */
export const deliveryQueue = (taskQueue: string): string => `${taskQueue}-notifications`;
/** Notifications claimed, and deliveries started, per pass. */
const BATCH = 200;

/**
 * The deliveries of each notification: to the user's enabled webhooks that listen for its kind,
 * and to each of the user's push subscriptions, as the settings allow (a push in quiet hours
 * held until they end).
 */
export function decideDeliveries({ notifications, endpoints, subscriptions, fcmTokens, settings }: deliveriesDb.DispatchInputs, now = new Date()): deliveriesDb.NewDelivery[] {
  const settingsOf = new Map(settings.map((s) => [s.userId, resolveSettings(s)]));
  const out: deliveriesDb.NewDelivery[] = [];
  for (const n of notifications) {
    const s = settingsOf.get(n.userId) ?? resolveSettings(null);
    if (decide(s, n.kind, 'webhook', now) === 'send') {
      for (const e of endpoints) {
        if (e.userId !== n.userId || !e.enabled || (e.kinds.length > 0 && !e.kinds.includes(n.kind))) continue;
        out.push({ notificationId: n.id, userId: n.userId, channel: 'webhook', endpointId: e.id, subscriptionId: null, fcmTokenId: null, notBefore: null });
      }
    }
    const push = decide(s, n.kind, 'web_push', now);
    if (push !== 'off') {
      const notBefore = push === 'hold' && s.quietHours ? quietHoursEnd(s.quietHours, now) : null;
      for (const sub of subscriptions) {
        if (sub.userId !== n.userId) continue;
        out.push({ notificationId: n.id, userId: n.userId, channel: 'web_push', endpointId: null, subscriptionId: sub.id, fcmTokenId: null, notBefore });
      }
    }
    const fcm = decide(s, n.kind, 'fcm', now);
    if (fcm !== 'off') {
      const notBefore = fcm === 'hold' && s.quietHours ? quietHoursEnd(s.quietHours, now) : null;
      for (const t of fcmTokens) {
        if (t.userId !== n.userId) continue;
        out.push({ notificationId: n.id, userId: n.userId, channel: 'fcm', endpointId: null, subscriptionId: null, fcmTokenId: t.id, notBefore });
      }
    }
  }
  return out;
}

/**
 * The delivery's workflow id: the notification, the channel and the target, so starting it
 * twice is refused by Temporal; each redelivery is a round of its own.
 */
export function deliveryWorkflowId(d: Pick<NotificationDelivery, 'notificationId' | 'channel' | 'endpointId' | 'subscriptionId' | 'fcmTokenId' | 'redeliveries'>): string {
  const base = `notification-${d.notificationId}-${d.channel}-${d.endpointId ?? d.subscriptionId ?? d.fcmTokenId}`;
  return d.redeliveries > 0 ? `${base}-r${d.redeliveries}` : base;
}

export interface DispatcherOptions {
  orm: Orm;
  temporal: Client;
  /**
   * Ask for eager starts: `temporal` is over a worker's NativeConnection
   * (clientOverWorkerConnection), which the SDK requires for them.
   */
  eagerStart?: boolean;
  taskQueue: string;
  logger: Logger;
  retry: DeliveryRetry;
  intervalMs: number;
}

/**
 * One pass: dispatch what is new, start what is not started. A sweep (`sweep`) also folds held
 * pushes that came due into their digests, which only time brings about. How many workflows it
 * started.
 */
export async function dispatchOnce({ orm, temporal, taskQueue, retry, eagerStart }: Omit<DispatcherOptions, 'logger' | 'intervalMs'>, sweep = true): Promise<number> {
  const em = orm.em.fork();
  // A batch per pass: a backlog drains over the next passes.
  const stored = await deliveriesDb.dispatch(em, BATCH, (inputs) => decideDeliveries(inputs));
  const start = async (d: NotificationDelivery): Promise<number> => {
    let started = 0;
    try {
      await temporal.workflow.start<typeof notificationDeliveryWorkflow>(DELIVERY_WORKFLOW, {
        workflowId: deliveryWorkflowId(d),
        taskQueue,
        args: [{ deliveryId: d.id, retry, local: true, permits: true }],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        // Each account's deliveries take their turn with the others' (the queue's fairness).
        priority: { fairnessKey: d.userId },
        // Where a task worker shares this client's connection (one process holding both, as
        // `npm start` does), its first task comes back in the start's answer.
        requestEagerStart: eagerStart ?? false,
      });
      started = 1;
    } catch (err) {
      // Started before (by another node, or before a crash that kept it from being marked).
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    await deliveriesDb.markStarted(orm.em.fork(), d.id, d.redeliveries);
    return started;
  };
  // What this pass stored goes at once (not held for quiet hours); beside it, side by side, the
  // outbox's other unstarted deliveries (redeliveries, held ones come due, a crash's leftovers).
  const fresh = stored.filter((d) => d.notBefore === null);
  const freshIds = new Set(fresh.map((d) => d.id));
  const rest = (async () => {
    if (sweep) await deliveriesDb.foldDueDigests(em);
    const others = (await deliveriesDb.unstarted(em, BATCH)).filter((d) => !freshIds.has(d.id));
    return Promise.all(others.map(start));
  })();
  const [now, others] = await Promise.all([Promise.all(fresh.map(start)), rest]);
  const results = [...now, ...others];
  return results.reduce((a, b) => a + b, 0);
}

/**
 * Passes wanted closer than this run as one: under load every run's end announces work, and one
 * pass takes a batch of up to BATCH notifications, so passes need not follow each other faster.
 */
export const MIN_PASS_GAP_MS = 25;

export interface Dispatcher {
  /** There is new work (an outbox notice): a pass soon, coalesced with others wanted meanwhile. */
  wake(): void;
  stop(): Promise<void>;
}

/**
 * Runs a pass when woken (at most one at a time, at least MIN_PASS_GAP_MS apart), and every
 * `intervalMs` whatever happens: the sweep that finds what a lost notice left and held pushes
 * that came due.
 */
export function startDispatcher(opts: DispatcherOptions): Dispatcher {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  /** When the scheduled pass runs (epoch ms); undefined while a pass runs. */
  let dueAt: number | undefined;
  let lastStart = 0;
  let lastSweep = Date.now();
  let woken = false;
  let running: Promise<void> = Promise.resolve();
  /** Whether the scheduled pass is the sweep (the timer's) rather than a woken one. */
  let sweep = true;
  const schedule = (at: number, isSweep: boolean) => {
    clearTimeout(timer);
    dueAt = at;
    sweep = isSweep;
    timer = setTimeout(tick, Math.max(0, at - Date.now()));
  };
  const tick = () => {
    dueAt = undefined;
    woken = false;
    lastStart = Date.now();
    // Woken passes that follow each other under load still sweep once an interval.
    const sweeping = sweep || lastStart - lastSweep >= opts.intervalMs;
    if (sweeping) lastSweep = lastStart;
    running = dispatchOnce(opts, sweeping)
      .then((n) => { if (n) opts.logger.debug({ started: n }, 'notification deliveries started'); })
      .catch((err: unknown) => opts.logger.warn({ err }, 'notification dispatch failed'))
      .finally(() => {
        if (stopped) return;
        // Woken during the pass: its work may have been committed after the pass's claim.
        if (woken) schedule(lastStart + MIN_PASS_GAP_MS, false);
        else schedule(Date.now() + opts.intervalMs, true);
      });
  };
  schedule(Date.now() + opts.intervalMs, true);
  return {
    wake() {
      if (stopped) return;
      if (dueAt === undefined) { woken = true; return; } // a pass is running: one more after it
      const soonest = Math.max(Date.now(), lastStart + MIN_PASS_GAP_MS);
      // The sweep it replaces comes again after this pass.
      if (dueAt > soonest) schedule(soonest, false);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
