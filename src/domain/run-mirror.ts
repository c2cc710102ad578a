// Writes run events into PostgreSQL: the event log, and the task row and its steps (a fold of
// the log). Used by the persistence activity, the gateway (events carried by a step's dispatch)
// and the reconciler. Idempotent by seq, and order-tolerant: batches may land in any order (a
// run's writers run side by side), the fold advances over the log's gap-free prefix only.
import type { Orm } from '../db/orm.ts';
import { Task } from '../db/entities.ts';
import { plainRow } from '../db/rows.ts';
import type { RunEvent } from '../../workflows/api.ts';
import { applyEvents, type StepWrite } from './task-mirror.ts';
import { EVENTS_CHANNEL } from '../ws/pg-bus.ts';

export async function applyRunEvents(orm: Orm, taskId: string, batch: RunEvent[]): Promise<void> {
  if (batch.length === 0) return;
  // Raw SQL, three statements in one transaction (lock the task, log the batch, fold it): this
  // is the engine's hottest write (a step's dispatch carries one), and entity hydration plus
  // unit-of-work bookkeeping was a third of the server's CPU under load (docs/benchmarks.md, F1).
  await orm.em.fork().transactional(async (tx) => {
    // Row lock: one writer per task, so retried or concurrent activities apply events once.
    const [row] = await tx.execute<Record<string, unknown>[]>('select * from tasks where id = ? for update', [taskId]);
    if (!row) return; // the task was deleted; nothing to mirror
    const task = plainRow(tx, Task, row);
    const before = task.lastSeq;
    const sorted = [...batch].sort((a, b) => a.seq - b.seq);
    const last = sorted[sorted.length - 1].seq;
    // The batch into the log, and (same round trip) the events that arrived ahead of it and
    // wait past a gap: rows beyond this batch are not its own, so the snapshot sees them all.
    const waiting = (await tx.execute<{ seq: number; kind: RunEvent['kind']; at: Date; data: Record<string, unknown> }[]>(
      `with ins as (
         insert into task_events (task_id, seq, kind, at, data) values ${batch.map(() => '(?, ?, ?, ?, ?::jsonb)').join(', ')}
         on conflict (task_id, seq) do nothing)
       select seq, kind, at, data from task_events where task_id = ? and seq > ? order by seq`,
      [...batch.flatMap((ev) => [taskId, ev.seq, ev.kind, new Date(ev.at), JSON.stringify(ev.data)]), taskId, Math.max(last, before)],
    )).map((r) => ({ seq: Number(r.seq), kind: r.kind, at: new Date(r.at).getTime(), data: r.data }));
    // A batch past a gap waits in the log; the batch that fills the gap folds it.
    if (sorted[0].seq > before + 1) return;
    const events = gapFree([...sorted, ...waiting], before);
    const steps = stepRows(applyEvents(task, events));
    if (task.lastSeq > before) {
      // The fold in one statement: the steps these events touch, the task row, and the notice
      // (delivered at commit) that lets user-scope monitors on every API node read the events.
      const upsertSteps = steps.length
        ? `s as (
             insert into task_steps (id, task_id, key, node_id, node_type, name, attempt, status, output, error, started_at, finished_at)
             values ${steps.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?, ?)').join(', ')}
             on conflict (key) do update set
               status = excluded.status,
               finished_at = excluded.finished_at,
               output = case when excluded.status = 'running' then task_steps.output else excluded.output end,
               error = case when excluded.status = 'running' then task_steps.error else excluded.error end),`
        : '';
      await tx.execute(
        `with ${upsertSteps} u as (
           update tasks set status = ?, status_reason = ?, current_node = ?, progress = ?, result = ?::jsonb,
             error = ?::jsonb, last_seq = ?, started_at = ?, finished_at = ?, duration_ms = ?, updated_at = now()
           where id = ? returning id)
         select pg_notify(?, ?) from u`,
        [
          ...steps.flatMap((st) => [
            crypto.randomUUID(), taskId, st.key, st.nodeId, st.nodeType || 'unknown', st.name, st.attempt, st.status,
            json(st.output), json(st.error), st.startedAt, st.status === 'running' ? null : st.at,
          ]),
          task.status, task.statusReason ?? null, task.currentNode ?? null, task.progress, json(task.result), json(task.error),
          task.lastSeq, task.startedAt ?? null, task.finishedAt ?? null, task.durationMs ?? null, taskId,
          EVENTS_CHANNEL, JSON.stringify({ user_id: task.userId, task_id: taskId, from_seq: before + 1, seq: task.lastSeq }),
        ],
      );
    }
    if ((task.status === 'cancelled' || task.status === 'failed') && task.finishedAt) {
      // A step still marked running when the run ended was aborted with it.
      await tx.execute(
        `update task_steps set status = ?, finished_at = ? where task_id = ? and status = 'running'`,
        [task.status, task.finishedAt, taskId],
        'run',
      );
    }
  });
}

const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v));

/**
 * One row per step key, as the sequence of writes would leave it: created by its first write,
 * status, end and result from its last (an upsert may touch a row once per statement).
 */
function stepRows(writes: StepWrite[]): (StepWrite & { startedAt: Date })[] {
  const rows = new Map<string, StepWrite & { startedAt: Date }>();
  for (const w of writes) {
    const row = rows.get(w.key);
    if (!row) {
      rows.set(w.key, { ...w, startedAt: w.at });
      continue;
    }
    row.status = w.status;
    row.at = w.at;
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
