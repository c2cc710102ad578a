// The running step's last progress, kept on its task so GET /tasks/:id can show it to a client
// that was not watching the live stream. Devices may report many times a second; the row is
// written at most once per interval per task, always ending with the latest report.
import type { Orm } from '../db/orm.ts';
import type { StepProgressRecord } from '../db/entities.ts';
import { dbOf } from '../db/sql.ts';
import * as tasksDb from '../db/tasks.ts';
import type { Logger } from '../logger.ts';

/** Shortest time between two writes of one task's progress. */
export const PROGRESS_WRITE_MS = 2000;

export class StepProgressRecorder {
  private readonly orm: Orm;
  private readonly logger: Logger;
  private readonly intervalMs: number;
  /** The latest report not written yet, per task. */
  private readonly latest = new Map<string, { userId: string; progress: StepProgressRecord }>();
  /** Tasks written less than `intervalMs` ago: a report now waits for the timer. */
  private readonly cooling = new Map<string, NodeJS.Timeout>();

  constructor(orm: Orm, logger: Logger, intervalMs = PROGRESS_WRITE_MS) {
    this.orm = orm;
    this.logger = logger;
    this.intervalMs = intervalMs;
  }

  record(userId: string, taskId: string, progress: StepProgressRecord): void {
    this.latest.set(taskId, { userId, progress });
    if (!this.cooling.has(taskId)) this.flush(taskId);
  }

  private flush(taskId: string): void {
    const next = this.latest.get(taskId);
    this.latest.delete(taskId);
    if (!next) {
      this.cooling.delete(taskId);
      return;
    }
    this.cooling.set(taskId, setTimeout(() => this.flush(taskId), this.intervalMs).unref());
    void dbOf(this.orm)
      .then((db) => tasksDb.setStepProgress(db, { userId: next.userId }, taskId, next.progress))
      .catch((err: unknown) => this.logger.warn({ err, taskId }, 'could not record step progress'));
  }

  /** Drops what is not written yet (the progress shown is a convenience, the live stream has it all). */
  stop(): void {
    for (const t of this.cooling.values()) clearTimeout(t);
    this.cooling.clear();
    this.latest.clear();
  }
}

