// Where a run's time goes, read from its Temporal history: workflow tasks and activities by
// type, queue time (scheduled -> started) and run time (started -> closed).
import type { temporal } from '@temporalio/proto';
import { localActivityType } from '../../src/ws/history-stream.ts';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface ActivityStats {
  type: string;
  count: number;
  /** Mean scheduled -> started, ms. */
  queueMs: number;
  /** Mean started -> closed, ms. */
  runMs: number;
  /** Sum of scheduled -> closed over the run, ms. */
  totalMs: number;
  /** A local activity: run inside a workflow task (no queue; its time is the task's). */
  local?: boolean;
}

export interface HistoryBreakdown {
  /** First to last event, ms. */
  durationMs: number;
  events: number;
  workflowTasks: { count: number; queueMs: number; runMs: number; totalMs: number };
  activities: ActivityStats[];
  signals: number;
  /** Mean time between the scheduling of two consecutive `stepType` activities, ms. */
  stepCycleMs: number;
}

const ms = (e: HistoryEvent) => {
  const t = e.eventTime;
  return t ? Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6 : 0;
};

export function historyBreakdown(events: HistoryEvent[], stepType: string): HistoryBreakdown {
  const acts = new Map<number, { type: string; scheduled: number; started?: number; closed?: number }>();
  const wfts = new Map<number, { scheduled: number; started?: number; closed?: number }>();
  const localCounts = new Map<string, number>();
  let signals = 0;
  for (const e of events) {
    const id = Number(e.eventId ?? 0);
    const t = ms(e);
    if (e.activityTaskScheduledEventAttributes) {
      acts.set(id, { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', scheduled: t });
    } else if (e.activityTaskStartedEventAttributes) {
      const a = acts.get(Number(e.activityTaskStartedEventAttributes.scheduledEventId));
      if (a) a.started = t;
    } else if (e.activityTaskCompletedEventAttributes || e.activityTaskFailedEventAttributes ||
      e.activityTaskCanceledEventAttributes || e.activityTaskTimedOutEventAttributes) {
      const attrs = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ??
        e.activityTaskCanceledEventAttributes ?? e.activityTaskTimedOutEventAttributes;
      const a = acts.get(Number(attrs?.scheduledEventId));
      if (a) a.closed = t;
    } else if (e.workflowTaskScheduledEventAttributes) {
      wfts.set(id, { scheduled: t });
    } else if (e.workflowTaskStartedEventAttributes) {
      const w = wfts.get(Number(e.workflowTaskStartedEventAttributes.scheduledEventId));
      if (w) w.started = t;
    } else if (e.workflowTaskCompletedEventAttributes || e.workflowTaskFailedEventAttributes || e.workflowTaskTimedOutEventAttributes) {
      const attrs = e.workflowTaskCompletedEventAttributes ?? e.workflowTaskFailedEventAttributes ?? e.workflowTaskTimedOutEventAttributes;
      const w = wfts.get(Number(attrs?.scheduledEventId));
      if (w) w.closed = t;
    } else if (e.workflowExecutionSignaledEventAttributes) {
      signals++;
    } else if (e.markerRecordedEventAttributes) {
      const type = localActivityType(e.markerRecordedEventAttributes);
      if (type) localCounts.set(type, (localCounts.get(type) ?? 0) + 1);
    }
  }
  const byType = new Map<string, { n: number; q: number; r: number; tot: number }>();
  const stepStarts: number[] = [];
  for (const a of acts.values()) {
    const s = byType.get(a.type) ?? { n: 0, q: 0, r: 0, tot: 0 };
    s.n++;
    if (a.started !== undefined) s.q += a.started - a.scheduled;
    if (a.started !== undefined && a.closed !== undefined) s.r += a.closed - a.started;
    if (a.closed !== undefined) s.tot += a.closed - a.scheduled;
    byType.set(a.type, s);
    if (a.type === stepType) stepStarts.push(a.scheduled);
  }
  const w = { count: 0, q: 0, r: 0 };
  for (const x of wfts.values()) {
    w.count++;
    if (x.started !== undefined) w.q += x.started - x.scheduled;
    if (x.started !== undefined && x.closed !== undefined) w.r += x.closed - x.started;
  }
  stepStarts.sort((a, b) => a - b);
  const gaps = stepStarts.slice(1).map((t, i) => t - stepStarts[i]);
  const first = events.length ? ms(events[0]) : 0;
  const last = events.length ? ms(events[events.length - 1]) : 0;
  return {
    durationMs: last - first,
    events: events.length,
    workflowTasks: { count: w.count, queueMs: w.count ? w.q / w.count : 0, runMs: w.count ? w.r / w.count : 0, totalMs: w.q + w.r },
    activities: [...byType.entries()]
      .map(([type, s]) => ({ type, count: s.n, queueMs: s.q / s.n, runMs: s.r / s.n, totalMs: s.tot }))
      .sort((a, b) => b.totalMs - a.totalMs)
      .concat([...localCounts].map(([type, count]) => ({ type, count, queueMs: 0, runMs: 0, totalMs: 0, local: true }))),
    signals,
    stepCycleMs: gaps.length ? gaps.reduce((a, b) => a + b, 0) / gaps.length : NaN,
  };
}

/** A run's way to its first activity, from its history (F8); times in epoch ms, as the server's clock says. */
export interface FirstStepPath {
  /** WorkflowExecutionStarted's time. */
  startedAt: number;
  /** Started -> the first (non-local) activity scheduled, ms: the workflow tasks before it. */
  toScheduledMs: number;
  /** Workflow tasks completed before the first activity was scheduled, and their queue + run time. */
  workflowTasks: number;
  wftQueueMs: number;
  wftRunMs: number;
  /** Scheduled -> started of the first activity (its task queue), ms. */
  activityQueueMs: number;
  /** The first activity's started time. */
  activityStartedAt: number;
}

export function firstStepPath(events: HistoryEvent[]): FirstStepPath | null {
  const wfts = new Map<number, { scheduled: number; started?: number }>();
  let startedAt = NaN;
  let workflowTasks = 0;
  let wftQueueMs = 0;
  let wftRunMs = 0;
  let scheduled: { id: number; t: number } | null = null;
  for (const e of events) {
    const id = Number(e.eventId ?? 0);
    const t = ms(e);
    if (e.workflowExecutionStartedEventAttributes) startedAt = t;
    else if (!scheduled && e.workflowTaskScheduledEventAttributes) wfts.set(id, { scheduled: t });
    else if (!scheduled && e.workflowTaskStartedEventAttributes) {
      const w = wfts.get(Number(e.workflowTaskStartedEventAttributes.scheduledEventId));
      if (w) w.started = t;
    } else if (!scheduled && e.workflowTaskCompletedEventAttributes) {
      const w = wfts.get(Number(e.workflowTaskCompletedEventAttributes.scheduledEventId));
      workflowTasks++;
      if (w?.started !== undefined) {
        wftQueueMs += w.started - w.scheduled;
        wftRunMs += t - w.started;
      }
    } else if (!scheduled && e.activityTaskScheduledEventAttributes) scheduled = { id, t };
    else if (scheduled && e.activityTaskStartedEventAttributes && Number(e.activityTaskStartedEventAttributes.scheduledEventId) === scheduled.id) {
      return { startedAt, toScheduledMs: scheduled.t - startedAt, workflowTasks, wftQueueMs, wftRunMs, activityQueueMs: t - scheduled.t, activityStartedAt: t };
    }
  }
  return null;
}
