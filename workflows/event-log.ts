// The run's durable events: numbered by the workflow, buffered, and written through activities
// whose scheduled inputs (or, for the last write, the local activity's marker) put them in
// history, where the monitor bridge reads them.
import type { PersistenceActivities } from '../activities/types.ts';
import type { EventKind, RunEvent, RunState } from './api.ts';
import { DirectScope } from './scope.ts';

export class EventLog {
  private readonly state: RunState;
  private readonly taskId: string;
  private readonly persist: PersistenceActivities;
  private pending: RunEvent[] = [];
  /** Settles once every batch recorded so far is written; null while none was recorded. */
  private recorder: Promise<unknown> | null = null;
  /**
   * The non-cancellable scope every write runs in (made at the first): a cancelled run still
   * writes its events. One for the run, not one per write: a scope costs promises to make.
   */
  private writes: DirectScope | null = null;
  /** Best-effort work (control frames, flushes from signal handlers) the run waits for at its end. */
  private readonly background: Promise<unknown>[] = [];

  constructor(state: RunState, taskId: string, persist: PersistenceActivities) {
    this.state = state;
    this.taskId = taskId;
    this.persist = persist;
  }

  emit(kind: EventKind, data: Record<string, unknown>): void {
    this.state.lastSeq += 1;
    this.pending.push({ seq: this.state.lastSeq, kind, at: Date.now(), data });
  }

  /** Hands the buffered events to a caller that writes them itself (a step's dispatch). */
  take(): RunEvent[] {
    const events = this.pending;
    this.pending = [];
    return events;
  }

  /**
   * Writes buffered events through the persistence activity. Its scheduled input is what the
   * monitor bridge reads from history, so each event is durable once flushed.
   */
  flush(): Promise<unknown> {
    if (this.pending.length > 0) this.record(this.take());
    return this.recorder ?? Promise.resolve();
  }

  /**
   * Records a batch. Scheduled at once, so history holds the batches in seq order; the mirror
   * folds them in by seq whatever order the writes land in.
   */
  record(events: RunEvent[]): void {
    if (events.length === 0) return;
    const written = this.nonCancellable(() => this.persist.recordRunEvents({ taskId: this.taskId, events }));
    this.recorder = this.recorder ? Promise.all([this.recorder, written]) : written;
  }

  private nonCancellable<T>(write: () => Promise<T>): Promise<T> {
    return (this.writes ??= new DirectScope({ cancellable: false })).run(write);
  }

  track(p: Promise<unknown>): void {
    // Best-effort work must not fail the workflow task with an unhandled rejection.
    this.background.push(p.catch(() => undefined));
  }

  /**
   * The run's last write: its final events and its device's lane given up, in one local
   * activity, so the next run gets the device once these events are written and the run
   * completes in the same workflow task. Waits for every earlier write and best-effort work.
   */
  finish(local: PersistenceActivities, deviceId: string): Promise<unknown> {
    const events = this.take();
    const last = this.nonCancellable(() => local.finishRun({ taskId: this.taskId, deviceId, events }));
    // Promise.all only when there is more to wait for (a plain run: only the last write).
    if (!this.recorder && this.background.length === 0) return last;
    return Promise.all([this.recorder, last, ...this.background]);
  }
}
