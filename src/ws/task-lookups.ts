// A task's status for a monitor's subscribe, if the task is the monitor's user's, read in batches.
import type { Orm } from '../db/orm.ts';
import { dbOf } from '../db/sql.ts';
import * as tasksDb from '../db/tasks.ts';

/**
 * Every subscribe that arrives while a read is running waits for the next one, so a burst of
 * monitors costs a few queries, and each answer is read after its subscribe arrived (a deleted
 * task is refused).
 */
export class TaskLookups {
  private readonly orm: Orm;
  /** `<taskId> <userId>` -> who waits for the answer. */
  private pending = new Map<string, ((row: { status: string } | null, err?: unknown) => void)[]>();
  private running = false;

  constructor(orm: Orm) {
    this.orm = orm;
  }

  /** The task's status, or null when it does not exist or is not the user's. */
  get(taskId: string, userId: string): Promise<{ status: string } | null> {
    return new Promise((resolve, reject) => {
      const key = `${taskId} ${userId}`;
      const waiters = this.pending.get(key) ?? [];
      waiters.push((row, err) => (err ? reject(err) : resolve(row)));
      this.pending.set(key, waiters);
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.size) {
      const batch = [...this.pending].slice(0, 500);
      for (const [id] of batch) this.pending.delete(id);
      try {
        const asks = batch.map(([key]) => {
          const [taskId, userId] = key.split(' ');
          return { taskId, userId };
        });
        const rows = await tasksDb.statusesOwned(await dbOf(this.orm), asks);
        const found = new Map(rows.map((r) => [`${r.id} ${r.user_id}`, { status: r.status }]));
        for (const [key, waiters] of batch) for (const w of waiters) w(found.get(key) ?? null);
      } catch (err) {
        for (const [, waiters] of batch) for (const w of waiters) w(null, err);
      }
    }
    this.running = false;
  }
}
