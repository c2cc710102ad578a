// Task runs: submission (idempotent), control (pause / resume / cancel as signals), reads.
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { EntityManager } from '@mikro-orm/postgresql';
import { FINISHED_STATUSES, Task, type Device, type Priority, type TaskStatus, type WorkflowVersion } from '../db/entities.ts';
import type { OwnedRepos } from '../db/owned.ts';
import { errors } from '../errors.ts';
import { PRIORITY_RANK, SA } from '../../workflows/search-attributes.ts';
import {
  TASK_RUN_WORKFLOW,
  approvalSignal,
  cancelSignal,
  deviceOnlineSignal,
  pauseSignal,
  resumeSignal,
  controlUpdate,
  workflowIdForTask,
  type ApprovalDecision,
  type ControlAction,
  type ControlRequest,
  type TaskRunInput,
} from '../../workflows/api.ts';
import type { taskRunWorkflow } from '../../workflows/task-run.ts';
import { beginsWithDeviceStep, type Definition } from '../../workflows/definition.ts';
import { validateDefinition } from './definition-schema.ts';
import { checkedParameters } from './parameter-schema.ts';
import { DeviceLanes } from './device-lanes.ts';
import { commitBesideMirror } from './run-mirror.ts';
import * as tasksDb from '../db/tasks.ts';
import type { Row } from '../db/sql.ts';
import { isLimitReached } from '../db/quotas.ts';

/** What one account may hold (settings ACCOUNT_MAX_*). */
export interface AccountLimits {
  devices: number;
  workflows: number;
  schedules: number;
  unfinishedRuns: number;
  webhooks: number;
  pushSubscriptions: number;
  fcmTokens: number;
}

export interface TaskEngine {
  temporal: Client;
  /**
   * Starts runs with `requestEagerStart` (Temporal's eager workflow start): a client over the
   * NativeConnection of this process's workers (clientOverWorkerConnection), so that where a task
   * worker runs in the same process, the run's first workflow task comes back in the start's
   * answer instead of going through matching; elsewhere the start is an ordinary one.
   */
  eagerStarts?: Client;
  taskQueue: string;
  offlineTimeoutMs: number;
  limits: AccountLimits;
  /** Presence older than this is not passed to the run as a hint of where its device is. */
  presenceStaleMs?: number;
}

export interface SubmitInput {
  workflow_id: string;
  device_id: string;
  parameters?: Record<string, unknown>;
  priority?: Priority;
  idempotency_key?: string;
}

/** Where the device is connected now, if fresh enough to send the first step there directly. */
function gatewayHint(device: Device, staleMs: number | undefined): boolean {
  if (!staleMs || !device.isOnline || !device.nodeId) return false;
  return Date.now() - (device.lastOnlineAt?.getTime() ?? 0) < staleMs;
}

/** Creates the task row, then starts its run (workflow id `task-<id>`). Same key: same task. */
export interface SubmitOptions {
  /** Run this version instead of the workflow's current one (retries). */
  version?: WorkflowVersion;
  resumeFrom?: TaskRunInput['resumeFrom'];
  retryOf?: string;
}

export async function submitTask(
  repos: OwnedRepos,
  engine: TaskEngine,
  input: SubmitInput,
  options: SubmitOptions = {},
): Promise<{ task: Task; created: boolean; names?: { workflow: string; device: string } }> {
  // Three round trips to PostgreSQL on the way (the hottest write of the API, docs/benchmarks.md
  // F1): read what the run needs, insert the task with its place in the device's lane, and
  // record the run id once the workflow started.
  if (input.idempotency_key) {
    const existing = await tasksDb.byIdempotencyKey(repos, input.idempotency_key);
    if (existing) return { task: existing, created: false };
  }
  const { wf, device, version } = await submissionParts(repos, input, options.version);
  if (wf.isArchived && !options.version) throw errors.conflict('workflow is archived');
  const definition = validDefinition(version);
  const parameters = checkedParameters(version, input.parameters ?? {});

  const id = crypto.randomUUID();
  const now = new Date();
  const data: Omit<Task, 'userId'> = {
    id,
    workflowId: wf.id,
    workflowVersionId: version.id,
    deviceId: device.id,
    status: 'pending',
    statusReason: 'queued',
    priority: input.priority ?? 'medium',
    parameters,
    idempotencyKey: input.idempotency_key ?? null,
    temporalWorkflowId: workflowIdForTask(id),
    temporalRunId: null,
    currentNode: null,
    progress: 0,
    result: null,
    error: null,
    lastSeq: 0,
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    finishedAt: null,
    durationMs: null,
    stepProgress: null,
  };

  const runInput: TaskRunInput = {
    taskId: id,
    userId: repos.userId,
    deviceId: device.id,
    workflowId: wf.id,
    workflowVersionId: version.id,
    workflowName: wf.name,
    definition,
    parameters: data.parameters,
    priority: data.priority,
    offlineTimeoutMs: engine.offlineTimeoutMs,
    taskQueue: engine.taskQueue,
    submittedAt: now.getTime(),
    lane: 'queued', // set below from the lane's answer
    budgeted: true,
    ...(gatewayHint(device, engine.presenceStaleMs) ? { gatewayHint: device.nodeId! } : {}),
    ...(options.resumeFrom ? { resumeFrom: options.resumeFrom } : {}),
  };
  // The task row and its place in the device's lane, together.
  const lanes = new DeviceLanes(repos.root, engine.temporal);
  const ticket = { deviceId: device.id, taskId: id, workflowId: data.temporalWorkflowId, priorityRank: PRIORITY_RANK[data.priority], submittedAt: runInput.submittedAt };
  let task: Task;
  let lane: Row | undefined;
  try {
    ({ task, lane } = await tasksDb.insertWithLane(repos, data, ticket, engine.limits.unfinishedRuns));
  } catch (err) {
    if (isLimitReached(err)) throw errors.tooManyRuns(engine.limits.unfinishedRuns);
    // Two submissions with one key raced: the other one won.
    if ((err as { code?: string }).code === '23505' && input.idempotency_key) {
      const winner = await tasksDb.byIdempotencyKey(repos, input.idempotency_key, true);
      if (winner) return { task: winner, created: false };
    }
    throw err;
  }
  try {
    runInput.lane = (await lanes.afterAcquire(device.id, lane)).granted ? 'granted' : 'queued';
  } catch (err) {
    await removeUnstarted(repos, lanes, task);
    throw errors.unavailable(`could not queue the run on its device: ${(err as Error).message}`);
  }
  // A run that holds its connected device and begins with a device step is running from its first
  // workflow task: indexed so from the start, it needs no search attribute update for it.
  if (runInput.lane === 'granted' && runInput.gatewayHint && beginsWithDeviceStep(definition, runInput.resumeFrom?.nodeId)) {
    runInput.statusAtStart = 'running';
  }
  try {
    const handle = await (engine.eagerStarts ?? engine.temporal).workflow.start<typeof taskRunWorkflow>(TASK_RUN_WORKFLOW, {
      taskQueue: engine.taskQueue,
      requestEagerStart: engine.eagerStarts !== undefined,
      workflowId: task.temporalWorkflowId,
      args: [runInput],
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes: [
        { key: SA.TaskId, value: id },
        { key: SA.UserId, value: repos.userId },
        { key: SA.DeviceId, value: device.id },
        { key: SA.WorkflowDefinitionId, value: wf.id },
        { key: SA.TaskStatus, value: runInput.statusAtStart ?? 'pending' },
        { key: SA.TaskPriority, value: PRIORITY_RANK[task.priority] },
      ],
      // The account is the fairness key (inherited by the run's activities): when one account
      // floods the task queues, Temporal dispatches its backlog in turn with other accounts' work.
      // The run's own priority orders only its device's lane: as a Temporal priority key it would
      // let an account that marks every run `high` go ahead of everyone else.
      priority: { fairnessKey: repos.userId },
      memo: { workflowName: wf.name, deviceName: device.deviceName, ...(options.retryOf ? { retryOf: options.retryOf } : {}) },
      staticSummary: `${wf.name} (v${version.version}) on ${device.deviceName}`,
    });
    task.temporalRunId = handle.firstExecutionRunId;
  } catch (err) {
    // Nothing runs without its workflow: remove the row so the same key can be submitted again,
    // and give its place in the lane up (a run whose start did succeed releases it itself).
    await removeUnstarted(repos, lanes, task);
    throw errors.unavailable(`could not start the run: ${(err as Error).message}`);
  }
  // The run is under way: recording its run id is a convenience (the workflow id, `task-<id>`,
  // is what links the task to Temporal), so a failure here does not fail the submission.
  // Committed with the mirror's next write (one commit less per run under load).
  await commitBesideMirror(repos.root, id, [tasksDb.setRunId(repos, id, task.temporalRunId)]).catch(() => undefined);
  return { task, created: true, names: { workflow: wf.name, device: device.deviceName } };
}

/** A task whose workflow never started: its row goes, and its hold or place in the lane. */
async function removeUnstarted(repos: OwnedRepos, lanes: DeviceLanes, task: Task): Promise<void> {
  await tasksDb.remove(repos, task.id);
  await lanes.release(task.deviceId, task.id).catch(() => undefined);
}

/** The workflow (the user's), the device (the user's) and the version to run: `given` (a retry) or the current one. */
async function submissionParts(repos: OwnedRepos, input: SubmitInput, given?: WorkflowVersion) {
  const parts = await tasksDb.submissionParts(repos, input.workflow_id, input.device_id);
  if (!parts) throw errors.notFound('workflow');
  const { wf, device, version } = parts;
  if (!device) throw errors.notFound('device');
  if (!given && !version) throw new Error(`workflow ${input.workflow_id} has no current version`);
  return { wf, device, version: given ?? version! };
}

/**
 * A version's definition, validated again (the validator may have grown stricter since it was
 * saved). Versions never change, so the answer is kept by version id for the process's life.
 */
const validated = new Map<string, Definition>();
const MAX_VALIDATED = 1000;

function validDefinition(version: WorkflowVersion): Definition {
  const known = validated.get(version.id);
  if (known) return known;
  const { definition, errors: problems } = validateDefinition(version.definition);
  if (!definition) throw errors.invalid('the workflow definition is not valid any more', problems);
  if (validated.size >= MAX_VALIDATED) validated.delete(validated.keys().next().value!);
  validated.set(version.id, definition as Definition);
  return definition as Definition;
}

/** A task and its steps in one query, read-only (GET /tasks/:id is the hottest read of the API). */
export async function taskWithSteps(repos: OwnedRepos, id: string) {
  const found = await tasksDb.withSteps(repos, id);
  if (!found) throw errors.notFound('task');
  return found;
}

/** Where a pending run stands in its device's queue (0: it holds the device). */
export async function queuePosition(em: () => EntityManager, temporal: Client, task: Task): Promise<number | null> {
  if (task.status !== 'pending' && task.status !== 'paused') return null;
  return new DeviceLanes(em(), temporal).position(task.deviceId, task.id);
}

/** Sends the approval decision to a run waiting at an approval node. */
export async function decideApproval(repos: OwnedRepos, temporal: Client, id: string, decision: ApprovalDecision) {
  const task = await tasksDb.get(repos, id);
  if (task.statusReason !== 'waiting_approval' || isFinished(task.status)) {
    throw errors.conflict('the task is not waiting for an approval', { status: task.status });
  }
  try {
    await temporal.workflow.getHandle(task.temporalWorkflowId).signal(approvalSignal, decision);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw errors.conflict('the run has already ended', { status: task.status });
    throw errors.unavailable(`could not reach the run: ${(err as Error).message}`);
  }
  return task;
}

/**
 * A new task from a failed or cancelled one: the same workflow version, device, parameters
 * and priority. `fromFailedStep` starts at the node that failed, with earlier outputs kept.
 */
export async function retryTask(repos: OwnedRepos, engine: TaskEngine, id: string, fromFailedStep: boolean) {
  const old = await tasksDb.get(repos, id);
  if (old.status !== 'failed' && old.status !== 'cancelled') {
    throw errors.conflict(`only a failed or cancelled task can be retried (this one is ${old.status})`, { status: old.status });
  }
  let resumeFrom: TaskRunInput['resumeFrom'];
  if (fromFailedStep) {
    const nodeId = (old.error as { step_id?: string } | null)?.step_id ?? old.currentNode;
    if (!nodeId) throw errors.conflict('the task has no failed step to start from');
    const outputs = { ...((old.result as Record<string, unknown> | null) ?? {}) };
    delete outputs[nodeId];
    resumeFrom = { nodeId, outputs };
  }
  const version = await tasksDb.version(repos, old);
  return submitTask(repos, engine, {
    workflow_id: old.workflowId,
    device_id: old.deviceId,
    parameters: old.parameters,
    priority: old.priority,
  }, { version, resumeFrom, retryOf: old.id });
}

export type { ControlAction };

const ALLOWED: Record<ControlAction, readonly TaskStatus[]> = {
  pause: ['pending', 'running'],
  resume: ['paused'],
  cancel: ['pending', 'running', 'paused'],
};
const RESULTING: Record<ControlAction, TaskStatus> = { pause: 'paused', resume: 'running', cancel: 'cancelled' };
const SIGNALS = { pause: pauseSignal, resume: resumeSignal, cancel: cancelSignal };

/** How long a control request waits for the run itself when the mirror says no. */
const RUN_ANSWER_MS = 2000;

/**
 * Pause, resume or cancel. When the mirror allows it: a signal (durable even while no worker
 * runs; the API answers at once). When the mirror says no but the run is not over, the mirror
 * may only be behind (a resume right after a pause): the run decides, through the `control`
 * update, whose validator refuses what the run's state does not allow (409 code 3001). When the
 * run cannot answer in time (an overloaded or absent worker), the request is accepted as a
 * signal: 202 means accepted, and the run applies it when its state allows.
 */
export async function controlTask(
  repos: OwnedRepos,
  temporal: Client,
  id: string,
  action: ControlAction,
  who: ControlRequest,
): Promise<{ task: Task; status: TaskStatus }> {
  const task = await tasksDb.get(repos, id);
  const handle = temporal.workflow.getHandle(task.temporalWorkflowId);
  if (!ALLOWED[action].includes(task.status)) {
    if (isFinished(task.status)) throw errors.conflict(`cannot ${action} a task that is ${task.status}`, { status: task.status });
    try {
      const status = await temporal.connection.withDeadline(Date.now() + RUN_ANSWER_MS, () =>
        handle.executeUpdate(controlUpdate, { args: [action, who] }));
      return { task, status };
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        throw errors.conflict(err.cause?.message ?? `cannot ${action} a task that is ${task.status}`, { status: task.status });
      }
      if (err instanceof WorkflowNotFoundError) {
        throw errors.conflict(`cannot ${action}: the run has already ended`, { status: task.status });
      }
      // The run did not answer in time (its worker is busy or away): fall through to the
      // signal, which is durable. The run applies it if its state allows, and ignores it if
      // not, or if the Update lands after all (both go through the same check).
    }
  }
  try {
    await handle.signal(SIGNALS[action], who);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw errors.conflict(`cannot ${action}: the run has already ended`, { status: task.status });
    }
    throw errors.unavailable(`could not reach the run: ${(err as Error).message}`);
  }
  return { task, status: RESULTING[action] };
}

export function isFinished(status: TaskStatus): boolean {
  return FINISHED_STATUSES.includes(status);
}

/** Wakes the runs waiting for a device that just connected. */
export async function signalDeviceOnline(em: EntityManager, temporal: Client, deviceId: string, nodeId: string) {
  const waiting = await tasksDb.unfinishedOnDevice(em, deviceId);
  await Promise.all(
    waiting.map((t) =>
      temporal.workflow.getHandle(t.temporalWorkflowId).signal(deviceOnlineSignal, { nodeId }).catch(() => undefined),
    ),
  );
}
