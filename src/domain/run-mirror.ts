// Writes run events into PostgreSQL: the event log, and the task row and its steps (a fold of
// the log). Used by the persistence activity, the gateway (events carried by a step's dispatch)
// and the reconciler. Idempotent by seq, and order-tolerant: batches may land in any order (a
// run's writers run side by side), the fold advances over the log's gap-free prefix only.
import type { Orm } from '../db/orm.ts';
import { Task } from '../db/entities.ts';
import { Fragment, jsonb, nativeSql, sql, uuid, type Row } from '../db/native-sql.ts';
import { plainRow } from '../db/rows.ts';
import type { RunEvent } from '../../workflows/api.ts';
import { applyEvents, type StepWrite } from './task-mirror.ts';
import { EVENTS_CHANNEL } from '../db/channels.ts';

/**
 * Writes a batch of a run's events. `also`: statements committed in the same transaction whatever
 * the batch does (the run's last write releases its device lane there); their rows are returned.
 */
export async function applyRunEvents(orm: Orm, taskId: string, batch: RunEvent[], also: string[] = []): Promise<Row[][]> {
  if (batch.length === 0 && also.length === 0) return [];
  const db = await nativeSql(orm);
  if (batch.length === 0) return db.transaction(async (tx) => (await tx.run(['begin', ...also, 'commit'])).slice(1, -1));
  const sorted = [...batch].sort((a, b) => a.seq - b.seq);
  const last = sorted[sorted.length - 1].seq;
  // One transaction in two round trips (src/db/native-sql.ts): this is the engine's hottest write
  // (every step's dispatch carries one), and it was five round trips through the ORM.
  return db.transaction(async (tx) => {
    /** Trip 2: `statements`, then `also`, then COMMIT; the rows of `also`. */
    const finish = async (statements: string[]) => (await tx.run([...statements, ...also, 'commit'])).slice(statements.length, -1);
    // Trip 1. The row lock first: one writer per task, so retried or concurrent activities apply
    // events once. Then, in a statement of its own (a fresh snapshot, taken under the lock), the
    // batch into the log, and the events that arrived ahead of it and wait past a gap: rows beyond
    // this batch are not its own, so that snapshot sees them all.
    const values = new Fragment(sorted.map((ev) => sql`(${ev.seq}, ${ev.kind}, ${new Date(ev.at)}, ${jsonb(ev.data ?? {})})`).join(', '));
    const [, [row], waitingRows] = await tx.run([
      'begin',
      sql`select * from tasks where id = ${taskId} for update`,
      sql`with ins as (
         insert into task_events (task_id, seq, kind, at, data)
         select ${uuid(taskId)}, v.seq, v.kind, v.at, v.data from (values ${values}) as v (seq, kind, at, data)
          where exists (select 1 from tasks where id = ${taskId})
         on conflict (task_id, seq) do nothing)
       select seq, kind, at, data from task_events
        where task_id = ${taskId} and seq > greatest(${last}, (select last_seq from tasks where id = ${taskId}))
        order by seq`,
    ]);
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
    const statements: string[] = [];
    if (task.lastSeq > before) {
      // Trip 2. The fold in one statement: the steps these events touch, the task row, and the
      // notice (delivered at commit) that lets user-scope monitors on every API node read them.
      const stepValues = steps.map((st) => sql`(${uuid(crypto.randomUUID())}, ${uuid(taskId)}, ${st.key}, ${st.nodeId},
        ${st.nodeType || 'unknown'}, ${st.name}, ${st.attempt}, ${st.status}, ${jsonb(st.output)}, ${jsonb(st.error)},
        ${st.startedAt}, ${st.status === 'running' ? null : st.at})`);
      const upsertSteps = new Fragment(steps.length
        ? `s as (
             insert into task_steps (id, task_id, key, node_id, node_type, name, attempt, status, output, error, started_at, finished_at)
             values ${stepValues.join(', ')}
             on conflict (key) do update set
               status = excluded.status,
               finished_at = excluded.finished_at,
               output = case when excluded.status = 'running' then task_steps.output else excluded.output end,
               error = case when excluded.status = 'running' then task_steps.error else excluded.error end),`
        : '');
      const notice = { user_id: task.userId, task_id: taskId, from_seq: before + 1, seq: task.lastSeq };
      statements.push(sql`with ${upsertSteps} u as (
           update tasks set status = ${task.status}, status_reason = ${task.statusReason}, current_node = ${task.currentNode},
             progress = ${task.progress}, result = ${jsonb(task.result)}, error = ${jsonb(task.error)},
             last_seq = ${task.lastSeq}, started_at = ${task.startedAt}, finished_at = ${task.finishedAt},
             duration_ms = ${task.durationMs}, updated_at = now()
           where id = ${taskId} returning id)
         select pg_notify(${EVENTS_CHANNEL}, ${JSON.stringify(notice)}) from u`);
    }
    if ((task.status === 'cancelled' || task.status === 'failed') && task.finishedAt) {
      // A step still marked running when the run ended was aborted with it.
      statements.push(sql`update task_steps set status = ${task.status}, finished_at = ${task.finishedAt} where task_id = ${taskId} and status = 'running'`);
    }
    return finish(statements);
  });
}

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
