// Writes run events into PostgreSQL: the event log, and the task row and its steps (a fold of
// the log). Used by the persistence activities, the dispatch activity (the events a step carries)
// and the reconciler. Idempotent by seq, and order-tolerant: batches may land in any order (a
// run's writers run side by side), the fold advances over the log's gap-free prefix only.
import type { Orm } from '../db/orm.ts';
import { Task } from '../db/entities.ts';
import { dbOf, type Row, type Sql } from '../db/sql.ts';
import { abortRunningSteps, lockTask, logEvents, writeFold, type StepRow } from '../db/run-mirror.ts';
import { plainRow } from '../db/rows.ts';
import { insertForRun } from '../db/notifications.ts';
import type { RunEvent } from '../../workflows/api.ts';
import { notificationsOf } from './notifications.ts';
import { applyEvents, type StepWrite } from './task-mirror.ts';

/**
 * Writes a batch of a run's events. `also`: statements committed in the same transaction whatever
 * the batch does (the run's last write releases its device lane there); their rows are returned.
 */
export async function applyRunEvents(orm: Orm, taskId: string, batch: RunEvent[], also: Sql[] = []): Promise<Row[][]> {
  if (batch.length === 0 && also.length === 0) return [];
  const db = await dbOf(orm);
  if (batch.length === 0) return db.transaction(async (tx) => (await tx.run(['begin', ...also, 'commit'])).slice(1, -1));
  const sorted = [...batch].sort((a, b) => a.seq - b.seq);
  // One transaction in two round trips (src/db/sql.ts): this is the engine's hottest write.
  return db.transaction(async (tx) => {
    /** Trip 2: `statements`, then `also`, then COMMIT; the rows of `also`. */
    const finish = async (statements: Sql[]) => (await tx.run([...statements, ...also, 'commit'])).slice(statements.length, -1);
    // Trip 1: the row lock, then the batch into the log with the events waiting past a gap.
    const [, [row], waitingRows] = await tx.run(['begin', lockTask(taskId), logEvents(taskId, sorted)]);
    if (!row) return finish([]); // the task was deleted; nothing to mirror
    const task = plainRow(orm.em, Task, row);
    const before = task.lastSeq;
    // A batch past a gap waits in the log; the batch that fills the gap folds it.
    if (sorted[0].seq > before + 1) return finish([]);
    const waiting = waitingRows.map((r) => ({
      seq: Number(r.seq), kind: r.kind as RunEvent['kind'], at: new Date(r.at as string | Date).getTime(), data: r.data as Record<string, unknown>,
    }));
    const events = gapFree([...sorted, ...waiting], before);
    const steps = stepRows(applyEvents(task, events));
    const statements: Sql[] = [];
    // Trip 2: the fold, when the events moved the task on.
    if (task.lastSeq > before) {
      // In the fold's transaction: its NOTIFY (sent at commit) tells the user feed to read them.
      const notifications = notificationsOf(events, task);
      if (notifications.length) statements.push(insertForRun(task, task.id, notifications));
      statements.push(writeFold(task, steps, before + 1));
    }
    if ((task.status === 'cancelled' || task.status === 'failed') && task.finishedAt) statements.push(abortRunningSteps(task));
    return finish(statements);
  });
}

/**
 * One row per step key, as the sequence of writes would leave it: created by its first write,
 * status, end and result from its last (an upsert may touch a row once per statement).
 */
function stepRows(writes: StepWrite[]): StepRow[] {
  const rows = new Map<string, StepRow>();
  for (const w of writes) {
    const row = rows.get(w.key);
    const finishedAt = w.status === 'running' ? null : w.at;
    if (!row) {
      rows.set(w.key, {
        key: w.key, nodeId: w.nodeId, nodeType: w.nodeType || 'unknown', name: w.name, attempt: w.attempt, status: w.status,
        output: w.output ?? null, error: w.error ?? null, startedAt: w.at, finishedAt,
      });
      continue;
    }
    row.status = w.status;
    row.finishedAt = finishedAt;
    if (w.status !== 'running') {
      row.output = w.output ?? null;
      row.error = w.error ?? null;
    }
  }
  return [...rows.values()];
}

/** The events that continue `lastSeq` without a gap, in seq order. */
function gapFree(events: RunEvent[], lastSeq: number): RunEvent[] {
  const out: RunEvent[] = [];
  let next = lastSeq + 1;
  for (const ev of events) {
    if (ev.seq < next) continue; // applied already
    if (ev.seq > next) break;
    out.push(ev);
    next++;
  }
  return out;
}
