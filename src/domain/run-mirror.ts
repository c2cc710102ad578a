// Writes run events into PostgreSQL: the event log, and the task row and its steps (a fold of
// the log). Used by the persistence activity, the gateway (events carried by a step's dispatch)
// and the reconciler. Idempotent by seq, and order-tolerant: batches may land in any order (a
// run's writers run side by side), the fold advances over the log's gap-free prefix only.
import { LockMode } from '@mikro-orm/core';
import type { Orm } from '../db/orm.ts';
import { Task, TaskStep } from '../db/entities.ts';
import type { RunEvent } from '../../workflows/api.ts';
import { applyEvents } from './task-mirror.ts';
import { EVENTS_CHANNEL } from '../ws/pg-bus.ts';

export async function applyRunEvents(orm: Orm, taskId: string, batch: RunEvent[]): Promise<void> {
  if (batch.length === 0) return;
  const em = orm.em.fork();
  await em.transactional(async (tx) => {
    // Row lock: one writer per task, so retried or concurrent activities apply events once.
    const task = await tx.findOne(Task, { id: taskId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!task) return; // the task was deleted; nothing to mirror
    const before = task.lastSeq;
    await tx.execute(
      `insert into task_events (task_id, seq, kind, at, data) values ${batch.map(() => '(?, ?, ?, ?, ?)').join(', ')}
       on conflict (task_id, seq) do nothing`,
      batch.flatMap((ev) => [taskId, ev.seq, ev.kind, new Date(ev.at), JSON.stringify(ev.data)]),
      'run',
    );
    const sorted = [...batch].sort((a, b) => a.seq - b.seq);
    // A batch past a gap waits in the log; the batch that fills the gap folds it.
    if (sorted[0].seq > before + 1) return;
    const last = sorted[sorted.length - 1].seq;
    const waiting = (await tx.execute<{ seq: number; kind: RunEvent['kind']; at: Date; data: Record<string, unknown> }[]>(
      'select seq, kind, at, data from task_events where task_id = ? and seq > ? order by seq',
      [taskId, Math.max(last, before)],
    )).map((r) => ({ seq: Number(r.seq), kind: r.kind, at: new Date(r.at).getTime(), data: r.data }));
    const events = gapFree([...sorted, ...waiting], before);
    const steps = applyEvents(task, events);
    // One query for the rows these events touch; a key seen twice in one fold (dispatched, then
    // completed) updates the row created for it here.
    const keys = [...new Set(steps.map((s) => s.key))];
    const rows = new Map((keys.length ? await tx.find(TaskStep, { key: { $in: keys } }) : []).map((r) => [r.key, r]));
    for (const s of steps) {
      const existing = rows.get(s.key);
      if (!existing) {
        rows.set(s.key, tx.create(TaskStep, {
          id: crypto.randomUUID(), taskId, key: s.key, nodeId: s.nodeId, nodeType: s.nodeType || 'unknown',
          name: s.name, attempt: s.attempt, status: s.status, output: s.output ?? null,
          error: s.error ?? null, startedAt: s.at, finishedAt: s.status === 'running' ? null : s.at,
        }));
      } else {
        existing.status = s.status;
        if (s.status === 'running') {
          existing.finishedAt = null;
        } else {
          existing.finishedAt = s.at;
          existing.output = s.output ?? null;
          existing.error = s.error ?? null;
        }
      }
    }
    if (task.lastSeq > before) {
      // Delivered at commit: user-scope monitors on every API node read the new events.
      await tx.execute('select pg_notify(?, ?)', [EVENTS_CHANNEL, JSON.stringify({
        user_id: task.userId, task_id: taskId, from_seq: before + 1, seq: task.lastSeq,
      })]);
    }
    if ((task.status === 'cancelled' || task.status === 'failed') && task.finishedAt) {
      // A step still marked running when the run ended was aborted with it.
      await tx.flush();
      await tx.nativeUpdate(
        TaskStep,
        { taskId, status: 'running' },
        { status: task.status === 'cancelled' ? 'cancelled' : 'failed', finishedAt: task.finishedAt },
      );
    }
  });
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
