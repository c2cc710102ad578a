// The run mirror's statements (the engine's hottest write: every step's dispatch carries one):
// the event log `task_events`, and the fold of it into `tasks` and `task_steps`. The caller
// (src/domain/run-mirror.ts) sends them, for one or many tasks, in two round trips of one
// transaction.
import type { RunEvent } from '../../workflows/api.ts';
import { EVENTS_CHANNEL, type TaskEventsNotice } from './channels.ts';
import type { Task } from './entities.ts';
import { empty, join, jsonb, sql, type Sql } from './sql.ts';

/**
 * The tasks' rows, locked in id order (two writers locking overlapping sets cannot deadlock):
 * one writer per task, so retried or concurrent activities apply events once.
 */
export const lockTasks = (taskIds: readonly string[]): Sql =>
  sql`select * from tasks where id in (${join(taskIds.map((id) => sql`${id}::uuid`))}) order by id for update`;

/** One task's events for the log, in seq order (not empty). */
export interface EventBatch {
  taskId: string;
  events: readonly RunEvent[];
}

/**
 * The batches into the log (of tasks that still exist), and per task the events that arrived
 * ahead of its batch and wait past a gap: run after `lockTasks` as a statement of its own (a
 * fresh snapshot, taken under the locks), so it sees them all. Rows ordered by task, then seq.
 */
export function logEvents(batches: readonly EventBatch[]): Sql {
  const values = join(batches.flatMap(({ taskId, events }) => events.map((ev) =>
    sql`(${taskId}::uuid, ${ev.seq}::int, ${ev.kind}::varchar, ${new Date(ev.at)}::timestamptz, ${jsonb(ev.data ?? {})})`)));
  const lasts = join(batches.map(({ taskId, events }) => sql`(${taskId}::uuid, ${events[events.length - 1].seq}::int)`));
  return sql`with ins as (
      insert into task_events (task_id, seq, kind, at, data)
      select v.task_id, v.seq, v.kind, v.at, v.data from (values ${values}) as v (task_id, seq, kind, at, data)
       where exists (select 1 from tasks t where t.id = v.task_id)
      on conflict (task_id, seq) do nothing)
    select e.task_id, e.seq, e.kind, e.at, e.data
      from (values ${lasts}) as b (task_id, last)
      join tasks t on t.id = b.task_id
      join task_events e on e.task_id = b.task_id and e.seq > greatest(b.last, t.last_seq)
     order by e.task_id, e.seq`;
}

/** What names a step attempt and where it stands: shared by the fold's writes and its rows. */
export interface StepFields {
  key: string;
  nodeId: string;
  nodeType: string;
  name: string | null;
  attempt: number;
  status: 'running' | 'completed' | 'failed' | 'cancelled';
}

/** One step row as the fold leaves it. */
export interface StepRow extends StepFields {
  output: unknown;
  error: unknown;
  startedAt: Date;
  finishedAt: Date | null;
}

/**
 * The fold in one statement: the steps the events touched, the task row, and the notice
 * (delivered at commit) that lets user-scope monitors on every API node read the new events.
 */
export function writeFold(task: Task, steps: readonly StepRow[], fromSeq: number): Sql {
  const upsertSteps = steps.length
    ? sql`s as (
        insert into task_steps (id, task_id, key, node_id, node_type, name, attempt, status, output, error, started_at, finished_at)
        values ${join(steps.map((st) => sql`(${crypto.randomUUID()}::uuid, ${task.id}::uuid, ${st.key}, ${st.nodeId}, ${st.nodeType},
          ${st.name}, ${st.attempt}::int, ${st.status}, ${jsonb(st.output)}, ${jsonb(st.error)}, ${st.startedAt}::timestamptz, ${st.finishedAt}::timestamptz)`))}
        on conflict (key) do update set
          status = excluded.status,
          finished_at = excluded.finished_at,
          output = case when excluded.status = 'running' then task_steps.output else excluded.output end,
          error = case when excluded.status = 'running' then task_steps.error else excluded.error end),`
    : empty;
  const notice: TaskEventsNotice & { from_seq: number } = { user_id: task.userId, task_id: task.id, from_seq: fromSeq, seq: task.lastSeq };
  return sql`with ${upsertSteps} u as (
      update tasks set status = ${task.status}, status_reason = ${task.statusReason}, current_node = ${task.currentNode},
        progress = ${task.progress}::int, result = ${jsonb(task.result)}, error = ${jsonb(task.error)},
        last_seq = ${task.lastSeq}::int, started_at = ${task.startedAt}::timestamptz, finished_at = ${task.finishedAt}::timestamptz,
        duration_ms = ${task.durationMs}::int, updated_at = now()
      where id = ${task.id} returning id)
    select pg_notify(${EVENTS_CHANNEL}, ${JSON.stringify(notice)}) from u`;
}

/** A step still marked running when its run ended was aborted with it. */
export const abortRunningSteps = (task: Task): Sql =>
  sql`update task_steps set status = ${task.status}, finished_at = ${task.finishedAt}::timestamptz
       where task_id = ${task.id} and status = 'running'`;
