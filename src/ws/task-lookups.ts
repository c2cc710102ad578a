// A task's owner and status for monitor subscribes, read in batches.
import type { Orm } from '../db/orm.ts';

/**
 * Every subscribe that arrives while a read is running waits for the next one, so a burst of
 * monitors costs a few queries, and each answer is read after its subscribe arrived (a deleted
 * task is refused).
 */
export class TaskLookups {
  private readonly orm: Orm;
  private pending = new Map<string, ((row: { userId: string; status: string } | null, err?: unknown) => void)[]>();
  private running = false;

  constructor(orm: Orm) {
    this.orm = orm;
  }

  get(taskId: string): Promise<{ userId: string; status: string } | null> {
    return new Promise((resolve, reject) => {
      const waiters = this.pending.get(taskId) ?? [];
      waiters.push((row, err) => (err ? reject(err) : resolve(row)));
      this.pending.set(taskId, waiters);
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
        const rows = await this.orm.em.getConnection().execute<{ id: string; user_id: string; status: string }[]>(
          `select id, user_id, status from tasks where id in (${batch.map(() => '?').join(', ')})`,
          batch.map(([id]) => id),
        );
        const found = new Map(rows.map((r) => [r.id, { userId: r.user_id, status: r.status }]));
        for (const [id, waiters] of batch) for (const w of waiters) w(found.get(id) ?? null);
      } catch (err) {
        for (const [, waiters] of batch) for (const w of waiters) w(null, err);
      }
    }
    this.running = false;
  }
}
