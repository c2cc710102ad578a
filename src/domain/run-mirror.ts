// Writes run events into PostgreSQL: the task row (a fold of its events), its steps, and the
// event log. Used by the persistence activity and by the reconciler; idempotent by seq.
import { LockMode } from '@mikro-orm/core';
import type { Orm } from '../db/orm.ts';
import { Task, TaskStep } from '../db/entities.ts';
import type { RunEvent } from '../../workflows/api.ts';
import { applyEvents } from './task-mirror.ts';
import { EVENTS_CHANNEL } from '../ws/pg-bus.ts';

export async function applyRunEvents(orm: Orm, taskId: string, events: RunEvent[]): Promise<void> {
  const em = orm.em.fork();
  await em.transactional(async (tx) => {
    // Row lock: one writer per task, so retried or concurrent activities apply events once.
    const task = await tx.findOne(Task, { id: taskId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!task) return; // the task was deleted; nothing to mirror
    const before = task.lastSeq;
    const steps = applyEvents(task, events);
    for (const ev of events) {
      await tx.execute(
        `insert into task_events (task_id, seq, kind, at, data) values (?, ?, ?, ?, ?)
         on conflict (task_id, seq) do nothing`,
        [taskId, ev.seq, ev.kind, new Date(ev.at), JSON.stringify(ev.data)],
        'run',
      );
    }
    for (const s of steps) {
      const existing = await tx.findOne(TaskStep, { key: s.key });
      if (!existing) {
        tx.create(TaskStep, {
          id: crypto.randomUUID(), taskId, key: s.key, nodeId: s.nodeId, nodeType: s.nodeType || 'unknown',
          name: s.name, attempt: s.attempt, status: s.status, output: s.output ?? null,
          error: s.error ?? null, startedAt: s.at, finishedAt: s.status === 'running' ? null : s.at,
        });
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
