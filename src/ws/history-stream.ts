// Streams a run's durable events out of its Temporal workflow history: one long-poll per task
// per API node, however many monitors watch it.
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import proto, { type temporal } from '@temporalio/proto';

// CommonJS: its namespaces are not named exports under Node's ESM loader.
const { HistoryEvent } = proto.temporal.api.history.v1;
import type { Logger } from '../logger.ts';
import { EVENT_CARRYING_ACTIVITIES, EVENT_CARRYING_LOCAL_ACTIVITIES, workflowIdForTask, type RunEvent } from '../../workflows/api.ts';
import type { TaskEventPayload } from '../protocol/index.ts';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/**
 * Maps one history event to run events. The workflow records each event in the input of a
 * `recordRunEvents` activity or of the step dispatch it rides with, or (its last events) in the
 * result of the `finishRun` local activity, so its seq is in history;
 * a batch written again (its dispatch failed) is skipped by seq. A run that ended without running our
 * code (terminated, timed out) gets a terminal event after the last one.
 */
export function mapHistoryEvent(e: HistoryEvent, lastSeq: number, sawTerminal: boolean): RunEvent[] {
  const scheduled = e.activityTaskScheduledEventAttributes;
  if (scheduled) {
    if (!EVENT_CARRYING_ACTIVITIES.includes(scheduled.activityType?.name ?? '')) return [];
    const payload = scheduled.input?.payloads?.[0];
    if (!payload) return [];
    const input = defaultPayloadConverter.fromPayload<{ events?: RunEvent[] }>(payload as never);
    return (input.events ?? []).filter((ev) => ev.seq > lastSeq);
  }
  const marker = e.markerRecordedEventAttributes;
  if (marker) return localActivityEvents(marker).filter((ev) => ev.seq > lastSeq);
  if (sawTerminal) return [];
  const at = eventTime(e);
  const end = (kind: RunEvent['kind'], data: Record<string, unknown>): RunEvent[] => [
    { seq: lastSeq + 1, kind, at, data },
  ];
  if (e.workflowExecutionTerminatedEventAttributes) {
    const a = e.workflowExecutionTerminatedEventAttributes;
    return end('run.cancelled', { by: a.identity || 'operator', client: 'temporal', reason: a.reason || 'terminated' });
  }
  if (e.workflowExecutionTimedOutEventAttributes) {
    return end('run.failed', { error: { code: 'RUN_TIMED_OUT', message: 'the run exceeded its execution timeout' } });
  }
  if (e.workflowExecutionFailedEventAttributes) {
    const msg = e.workflowExecutionFailedEventAttributes.failure?.message ?? 'workflow failed';
    return end('run.failed', { error: { code: 'RUN_FAILED', message: msg } });
  }
  if (e.workflowExecutionCanceledEventAttributes) {
    return end('run.cancelled', { by: 'operator', client: 'temporal', reason: 'cancelled in Temporal' });
  }
  return [];
}

/**
 * The activity type of a local activity's marker, as the Temporal SDK core records it
 * (`core_local_activity`: JSON with the activity type in `data`, the answer in `result`);
 * null for any other marker.
 */
export function localActivityType(marker: temporal.api.history.v1.IMarkerRecordedEventAttributes): string | null {
  if (marker.markerName !== 'core_local_activity') return null;
  const meta = marker.details?.data?.payloads?.[0]?.data;
  if (!meta) return null;
  try {
    return String((JSON.parse(Buffer.from(meta).toString('utf8')) as { activity_type?: string }).activity_type ?? '?');
  } catch {
    return null;
  }
}

/** The events a local activity wrote (its input is not in history, so it answers them). */
function localActivityEvents(marker: temporal.api.history.v1.IMarkerRecordedEventAttributes): RunEvent[] {
  const type = localActivityType(marker);
  const result = marker.details?.result?.payloads?.[0];
  if (!type || !EVENT_CARRYING_LOCAL_ACTIVITIES.includes(type) || !result) return [];
  try {
    return defaultPayloadConverter.fromPayload<{ events?: RunEvent[] }>(result as never).events ?? [];
  } catch {
    return [];
  }
}

/** Every run event in a (closed or open) run's history, read once without waiting. */
export async function readRunEvents(client: Client, taskId: string): Promise<RunEvent[]> {
  const history = await client.workflow.getHandle(workflowIdForTask(taskId)).fetchHistory();
  const events: RunEvent[] = [];
  let terminal = false;
  for (const e of history.events ?? []) {
    const last = events.length ? events[events.length - 1].seq : 0;
    for (const ev of mapHistoryEvent(e, last, terminal)) {
      events.push(ev);
      if (TERMINAL.has(ev.kind)) terminal = true;
    }
  }
  return events;
}

function eventTime(e: HistoryEvent): number {
  const t = e.eventTime;
  if (!t) return Date.now();
  return Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

const TERMINAL = new Set(['run.completed', 'run.failed', 'run.cancelled']);

function isClose(e: HistoryEvent): boolean {
  return !!(
    e.workflowExecutionCompletedEventAttributes || e.workflowExecutionFailedEventAttributes ||
    e.workflowExecutionTimedOutEventAttributes || e.workflowExecutionTerminatedEventAttributes ||
    e.workflowExecutionCanceledEventAttributes || e.workflowExecutionContinuedAsNewEventAttributes
  );
}

type Listener = (ev: TaskEventPayload) => void;

/**
 * Subscribes `fn` to a stream's `read` items and its live `listeners`, delivering each item
 * whose position is past the subscriber's cursor exactly once, in order.
 */
function attachAfter<T>(read: readonly T[], listeners: Set<(ev: T) => void>, position: (ev: T) => number,
  fn: (ev: T) => void, after: number): () => void {
  let cursor = after;
  const deliver = (ev: T): void => {
    const at = position(ev);
    if (at <= cursor) return;
    cursor = at;
    fn(ev);
  };
  for (const ev of read) deliver(ev);
  listeners.add(deliver);
  return () => listeners.delete(deliver);
}
/** A `history/event` payload, shared by every raw subscriber. */
export interface RawHistoryEvent {
  task_id: string;
  event_id: number;
  event: unknown;
}
type RawListener = (ev: RawHistoryEvent) => void;

/** One task's history poller and everything it has read so far. */
export class TaskHistoryStream {
  readonly taskId: string;
  readonly events: TaskEventPayload[] = [];
  private readonly listeners = new Set<Listener>();
  /** The history events themselves, for raw subscribers (JSON form). */
  readonly raw: RawHistoryEvent[] = [];
  private readonly rawListeners = new Set<RawListener>();
  private readonly abort = new AbortController();
  private sawTerminal = false;
  closed = false;
  /** Long-polls made; a benchmark and tests read it. */
  polls = 0;
  private readonly client: Client;
  private readonly namespace: string;
  private readonly logger: Logger;

  constructor(taskId: string, client: Client, namespace: string, logger: Logger) {
    this.taskId = taskId;
    this.client = client;
    this.namespace = namespace;
    this.logger = logger;
  }

  get lastSeq(): number {
    return this.events.length ? (this.events[this.events.length - 1].seq ?? 0) : 0;
  }

  /**
   * Replays every event after `afterSeq`, then delivers new ones as they come. The cursor is the
   * subscriber's own, not the stream's: on a stream that has not read the history yet (this node
   * never streamed the run, or restarted) every event arrives through the live path, and only
   * the cursor keeps the ones the subscriber already has from reaching it again.
   */
  attach(fn: Listener, afterSeq = 0): () => void {
    return attachAfter(this.events, this.listeners, (ev) => ev.seq ?? 0, fn, afterSeq);
  }

  /** As `attach`, for history events by event id. */
  attachRaw(fn: RawListener, afterEventId = 0): () => void {
    return attachAfter(this.raw, this.rawListeners, (ev) => ev.event_id, fn, afterEventId);
  }

  get watchers(): number {
    return this.listeners.size + this.rawListeners.size;
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    this.abort.abort();
  }

  private push(ev: RunEvent): void {
    const payload: TaskEventPayload = { task_id: this.taskId, seq: ev.seq, kind: ev.kind, at: ev.at, data: ev.data };
    this.events.push(payload);
    if (TERMINAL.has(ev.kind)) this.sawTerminal = true;
    for (const fn of this.listeners) fn(payload);
  }

  private pushRaw(e: HistoryEvent): void {
    const id = Number(e.eventId ?? 0);
    if (this.raw.length && id <= this.raw[this.raw.length - 1].event_id) return;
    const ev: RawHistoryEvent = {
      task_id: this.taskId,
      event_id: id,
      event: HistoryEvent.toObject(e as temporal.api.history.v1.HistoryEvent, {
        longs: String, enums: String, bytes: String,
      }),
    };
    this.raw.push(ev);
    for (const fn of this.rawListeners) fn(ev);
  }

  private async run(): Promise<void> {
    const svc = this.client.workflowService;
    let token: Uint8Array | undefined;
    let backoff = 200;
    while (!this.abort.signal.aborted) {
      try {
        this.polls++;
        const res = await this.client.connection.withAbortSignal(this.abort.signal, () =>
          svc.getWorkflowExecutionHistory({
            namespace: this.namespace,
            execution: { workflowId: workflowIdForTask(this.taskId) },
            nextPageToken: token,
            waitNewEvent: true,
            maximumPageSize: 1000,
          }),
        );
        backoff = 200;
        let ended = false;
        for (const e of res.history?.events ?? []) {
          this.pushRaw(e);
          for (const ev of mapHistoryEvent(e, this.lastSeq, this.sawTerminal)) this.push(ev);
          if (isClose(e)) ended = true;
        }
        if (res.nextPageToken?.length) {
          token = res.nextPageToken;
        } else if (ended || !token) {
          // Closed and fully read: nothing more will come.
          if (ended) break;
          token = undefined;
        }
      } catch (err) {
        if (this.abort.signal.aborted) break;
        const notFound = (err as { code?: number }).code === 5;
        if (notFound) {
          // Started a moment ago, or deleted; poll gently.
          this.logger.debug({ taskId: this.taskId }, 'history not found yet');
        } else {
          this.logger.warn({ err, taskId: this.taskId }, 'history poll failed; retrying');
        }
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    }
    this.closed = true;
  }
}

/** Per-node registry: one stream per watched task, stopped when its last watcher leaves. */
export class HistoryStreams {
  private readonly streams = new Map<string, TaskHistoryStream>();
  private readonly idleTimers = new Map<string, NodeJS.Timeout>();
  private readonly client: Client;
  private readonly namespace: string;
  private readonly logger: Logger;
  private readonly idleMs: number;

  constructor(client: Client, namespace: string, logger: Logger, idleMs = 30_000) {
    this.client = client;
    this.namespace = namespace;
    this.logger = logger;
    this.idleMs = idleMs;
  }

  /** Watches a task: replay after `afterSeq`, then live. Returns the detach function. */
  watch(taskId: string, fn: Listener, afterSeq = 0): () => void {
    return this.attach(taskId, (s) => s.attach(fn, afterSeq));
  }

  /** Watches a task's raw history events after `afterEventId`. */
  watchRaw(taskId: string, fn: RawListener, afterEventId = 0): () => void {
    return this.attach(taskId, (s) => s.attachRaw(fn, afterEventId));
  }

  private attach(taskId: string, attachTo: (s: TaskHistoryStream) => () => void): () => void {
    clearTimeout(this.idleTimers.get(taskId));
    this.idleTimers.delete(taskId);
    let stream = this.streams.get(taskId);
    if (!stream) {
      stream = new TaskHistoryStream(taskId, this.client, this.namespace, this.logger);
      this.streams.set(taskId, stream);
      stream.start();
    }
    const detach = attachTo(stream);
    const s = stream;
    return () => {
      detach();
      if (s.watchers === 0 && !this.idleTimers.has(taskId)) {
        // Keep the stream a while: monitors that reconnect resume from memory.
        const t = setTimeout(() => {
          this.idleTimers.delete(taskId);
          if (s.watchers === 0) {
            s.stop();
            this.streams.delete(taskId);
          }
        }, this.idleMs);
        t.unref();
        this.idleTimers.set(taskId, t);
      }
    };
  }

  stream(taskId: string): TaskHistoryStream | undefined {
    return this.streams.get(taskId);
  }

  get size(): number {
    return this.streams.size;
  }

  close(): void {
    for (const t of this.idleTimers.values()) clearTimeout(t);
    for (const s of this.streams.values()) s.stop();
    this.streams.clear();
  }
}
