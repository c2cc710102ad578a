// Task rows: the submission's reads and writes (POST /tasks is the API's hottest write) and the
// task-with-steps read (GET /tasks/:id, its hottest read), each in one round trip.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Device, Task, TaskEvent, TaskStep, Workflow, WorkflowVersion, type StepProgressRecord, type TaskStatus } from './entities.ts';
import * as lanes from './lanes.ts';
import { createdBetween } from './filters.ts';
import type { OwnedRepos } from './owned.ts';
import type { UserScope } from './scope.ts';
import { plainRow } from './rows.ts';
import { dbOf, sql, type Db, type Row, type Sql } from './sql.ts';
import type { LaneTicket } from '../../workflows/api.ts';
import * as quotas from './quotas.ts';

/** The user's task submitted under `key`, if any. */
export async function byIdempotencyKey(repos: OwnedRepos, key: string, fresh = false): Promise<Task | null> {
  // `fresh`: outside the request's identity map (after a unique violation the map may be stale).
  const em = fresh ? repos.em.fork() : repos.em;
  return em.findOne(Task, { userId: repos.userId, idempotencyKey: key });
}

/**
 * What a submission needs, in one query: the user's workflow, the user's device, and the
 * workflow's current version (null when it has none). Null: no such workflow of the user's.
 */
export async function submissionParts(repos: OwnedRepos, workflowId: string, deviceId: string) {
  const row = await repos.rawOne(Workflow, workflowId, sql`
    (select row_to_json(d) from devices d where d.id = ${deviceId} and d.user_id = t.user_id) as device,
    (select row_to_json(v) from workflow_versions v where v.workflow_id = t.id and v.version = t.current_version) as version`);
  if (!row) return null;
  const { device, version, ...wf } = row;
  return {
    wf: plainRow(repos.root, Workflow, wf),
    device: device ? plainRow(repos.root, Device, device as Row) : null,
    version: version ? plainRow(repos.root, WorkflowVersion, version as Row) : null,
  };
}

/**
 * Inserts the user's task and asks for its place in the device's lane, in one transaction and
 * one round trip: a free device is the run's from its first workflow task. Returns the task as
 * inserted and the lane's answer row (src/db/lanes.ts, `acquire`).
 */
export async function insertWithLane(repos: OwnedRepos, data: Omit<Task, 'userId'>, ticket: LaneTicket, maxUnfinished: number) {
  const { row: task, statement } = repos.insertion(Task, data);
  const db = await dbOf(repos.root);
  // The user's place among their unfinished runs is taken in the same transaction and round trip.
  const [, , , [lane]] = await db.transaction((tx) =>
    tx.run(['begin', quotas.admit(repos, 'runs', maxUnfinished), statement, lanes.acquire(ticket), 'commit']));
  return { task, lane };
}

/** Records the run id of the task's workflow (the caller commits it). */
export const setRunId = (repos: OwnedRepos, id: string, runId: string | null): Sql =>
  sql`update tasks set temporal_run_id = ${runId} where id = ${id} and user_id = ${repos.userId}`;

export async function remove(repos: OwnedRepos, id: string): Promise<void> {
  await (await dbOf(repos.root)).all(sql`delete from tasks where id = ${id} and user_id = ${repos.userId}`);
}

/** The user's task and its steps in one query, read-only; null when there is none. */
export async function withSteps(repos: OwnedRepos, id: string) {
  const row = await repos.rawOne(Task, id,
    sql`coalesce((select json_agg(s order by s.started_at, s.attempt) from task_steps s where s.task_id = t.id), '[]'::json) as steps,
    (select w.name from workflows w where w.id = t.workflow_id) as workflow_name,
    (select d.device_name from devices d where d.id = t.device_id) as device_name`);
  if (!row) return null;
  const { steps, workflow_name, device_name, ...task } = row;
  const t = plainRow(repos.root, Task, task);
  return {
    task: t,
    steps: (steps as Record<string, unknown>[]).map((s) => plainRow(repos.root, TaskStep, s)),
    names: {
      workflows: new Map(workflow_name == null ? [] : [[t.workflowId, String(workflow_name)]]),
      devices: new Map(device_name == null ? [] : [[t.deviceId, String(device_name)]]),
    } satisfies TaskNames,
  };
}

/** The version a task ran (a task's version is never deleted while the task exists). */
export function version(repos: OwnedRepos, task: Task): Promise<WorkflowVersion> {
  return repos.em.findOneOrFail(WorkflowVersion, { id: task.workflowVersionId, workflowId: task.workflowId });
}

/** The unfinished runs on a device, whoever's (the engine wakes them when it connects). */
export function unfinishedOnDevice(em: EntityManager, deviceId: string) {
  return em.find(Task, { deviceId, status: { $in: ['pending', 'running', 'paused'] } }, { fields: ['id', 'temporalWorkflowId'] });
}

/** The user's task. */
export function get(repos: OwnedRepos, id: string): Promise<Task> {
  return repos.get(Task, id, 'task');
}

/** The user's task's durable events after `afterSeq`, oldest first; null when the task is not the user's. */
export async function eventsAfter(repos: OwnedRepos, id: string, afterSeq: number, limit: number): Promise<TaskEvent[] | null> {
  const task = await repos.findOne(Task, id);
  if (!task) return null;
  return repos.em.find(TaskEvent, { taskId: task.id, seq: { $gt: afterSeq } }, { orderBy: { seq: 'asc' }, limit });
}

// For the engine (no user scope: these answer by task id for code that already knows the run).

/**
 * The status of each asked task that belongs to its asker (monitors' subscriptions, batched across
 * users): a pair whose task is missing or someone else's has no row, so the owner check is here.
 */
export async function statusesOwned(db: Db, asks: readonly { taskId: string; userId: string }[]): Promise<{ id: string; user_id: string; status: TaskStatus }[]> {
  const ids = asks.map((a) => a.taskId);
  const users = asks.map((a) => a.userId);
  return db.all(sql`select t.id, t.user_id, t.status from tasks t
    join unnest(${ids}::uuid[], ${users}::uuid[]) as a(id, user_id) on t.id = a.id and t.user_id = a.user_id`);
}

/** A run's durable events with from < seq <= to, oldest first. */
export function eventsBetween(em: EntityManager, taskId: string, from: number, to: number): Promise<TaskEvent[]> {
  return em.find(TaskEvent, { taskId, seq: { $gt: from, $lte: to } }, { orderBy: { seq: 'asc' } });
}

/** A task's status and device, by id (the reconciler). */
export function statusAndDevice(em: EntityManager, id: string) {
  return em.findOne(Task, { id }, { fields: ['id', 'status', 'deviceId'] });
}

/** How many tasks are in each status, everyone's (the metrics scrape). */
export function countByStatus(db: Db): Promise<{ status: TaskStatus; n: number }[]> {
  return db.all(sql`select status, count(*)::int as n from tasks group by status`);
}

export interface TaskFilter {
  status?: TaskStatus;
  deviceId?: string;
  workflowId?: string;
  from?: Date;
  to?: Date;
}

/** The condition (for the ORM, under the user's scope) that selects the tasks `filter` asks for. */
export function where(filter: TaskFilter): Record<string, unknown> {
  const w: Record<string, unknown> = {};
  if (filter.status) w.status = filter.status;
  if (filter.deviceId) w.deviceId = filter.deviceId;
  if (filter.workflowId) w.workflowId = filter.workflowId;
  if (filter.from || filter.to) w.createdAt = createdBetween(filter.from, filter.to);
  return w;
}

/**
 * Records the running step's last progress on the user's unfinished task, unless a later report
 * is there already (a slow write must not undo the one after it).
 */
export async function setStepProgress(db: Db, scope: UserScope, taskId: string, progress: StepProgressRecord): Promise<void> {
  await db.all(sql`update tasks set step_progress = ${JSON.stringify(progress)}::jsonb
    where id = ${taskId} and user_id = ${scope.userId} and status in ('pending', 'running', 'paused')
      and coalesce((step_progress->>'at')::float8, 0) <= ${progress.at}::float8`);
}

/** The names of the user's workflows and devices the tasks name (renamed ones by their names now). */
export async function namesFor(repos: OwnedRepos, tasks: readonly Pick<Task, 'workflowId' | 'deviceId'>[]): Promise<TaskNames> {
  const workflows = new Map<string, string>();
  const devices = new Map<string, string>();
  if (!tasks.length) return { workflows, devices };
  const rows = await (await dbOf(repos.root)).all<{ kind: 'w' | 'd'; id: string; name: string }>(sql`
    select 'w' as kind, id, name from workflows where user_id = ${repos.userId} and id = any(${[...new Set(tasks.map((t) => t.workflowId))]}::uuid[])
    union all
    select 'd', id, device_name from devices where user_id = ${repos.userId} and id = any(${[...new Set(tasks.map((t) => t.deviceId))]}::uuid[])`);
  for (const r of rows) (r.kind === 'w' ? workflows : devices).set(r.id, r.name);
  return { workflows, devices };
}

export interface TaskNames {
  workflows: Map<string, string>;
  devices: Map<string, string>;
}
