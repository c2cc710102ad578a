// The task-run workflow's public surface: input, result, signals, queries and the events it
// records. Imported by the API (to start and steer runs) and by the workflow itself.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Definition } from './definition.ts';

export type Priority = 'high' | 'medium' | 'low';
export type RunStatus = 'pending' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled';

export interface TaskRunInput {
  taskId: string;
  userId: string;
  deviceId: string;
  workflowId: string;
  workflowVersionId: string;
  workflowName: string;
  definition: Definition;
  parameters: Record<string, unknown>;
  priority: Priority;
  /** How long the run waits for an offline device before it fails. */
  offlineTimeoutMs: number;
  /** Task queue of the persistence activities (the task workers' queue). */
  taskQueue: string;
  /** Epoch ms the task was submitted: the lane orders equal priorities by it. */
  submittedAt: number;
  /**
   * The device lane in PostgreSQL (src/domain/device-lanes.ts) that the submitter asked:
   * `granted`, the run holds its device from the start; `queued`, it waits for `laneGranted`.
   */
  lane: 'granted' | 'queued';
  /**
   * The API node whose gateway (its /ws endpoint) held the device's socket at submission: the
   * first step tries it unlooked-up. The field's name is kept as recorded in run histories.
   */
  gatewayHint?: string;
  /**
   * The TaskStatus search attribute the run was started with, when not `pending`: a run that
   * holds its device (lane granted) on a connected device starts indexed as `running`, which
   * it becomes in its first workflow task (one search attribute update less per run).
   */
  statusAtStart?: RunStatus;
  /**
   * The run keeps to the bounds of workflows/bounds.ts (the `run-budget` change), as its
   * submitter says: such a run asks no `patched('run-budget')`, so its history has no marker and
   * no TemporalChangeVersion update for it (docs/workflow-changes.md). Runs without the field
   * (started before it) ask `patched()`, as they did.
   */
  budgeted?: true;
  /** A retry "from the failed step": start at this node with these earlier outputs. */
  resumeFrom?: { nodeId: string; outputs: Record<string, unknown> };
}

export interface RunError {
  code: string;
  message: string;
  step_id?: string;
  details?: unknown;
}

export interface TaskRunResult {
  status: 'completed' | 'failed' | 'cancelled';
  outputs: Record<string, unknown>;
  error?: RunError;
}

/** Who asked for a control action, recorded with it. */
export interface ControlRequest {
  by: string;
  client?: string;
  reason?: string;
}

export const EVENT_KINDS = [
  'run.pending', 'run.started', 'step.dispatched', 'step.progress', 'step.artifact', 'step.completed', 'step.failed',
  'run.paused', 'run.resumed', 'run.waiting_approval', 'run.approval_decided',
  'run.cancel_requested',
  'run.completed', 'run.failed', 'run.cancelled', 'log',
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/**
 * A file the device attached to a step (stored by the API node holding it, before the step's
 * answer): the device-step activity hands these back with the outcome, and the run records one
 * `step.artifact` event each.
 */
export interface StepArtifactRef {
  artifact_id: string;
  kind: 'screenshot' | 'file';
  name: string;
  content_type: string;
  size: number;
  has_thumbnail: boolean;
  width: number | null;
  height: number | null;
}

/** A durable run event: written by the workflow, so its seq is part of history. */
export interface RunEvent {
  seq: number;
  kind: EventKind;
  /** Epoch ms (workflow time). */
  at: number;
  data: Record<string, unknown>;
}

export interface StepState {
  step_id: string;
  name?: string;
  type: string;
  attempt: number;
  key: string;
  status: 'running' | 'completed' | 'failed' | 'cancelled';
  output?: unknown;
  error?: RunError;
}

export interface RunState {
  status: RunStatus;
  reason: string | null;
  currentNode: string | null;
  progress: number;
  paused: boolean;
  cancelRequested: boolean;
  steps: StepState[];
  lastSeq: number;
}

export const pauseSignal = defineSignal<[ControlRequest]>('pause');
export const resumeSignal = defineSignal<[ControlRequest]>('resume');
export const cancelSignal = defineSignal<[ControlRequest]>('cancel');
/** Sent by an API node when the run's device connects. */
export const deviceOnlineSignal = defineSignal<[{ nodeId: string }]>('deviceOnline');
export const stateQuery = defineQuery<RunState>('state');

export type ControlAction = 'pause' | 'resume' | 'cancel';
/**
 * The same actions as the signals, checked by the run itself: its validator refuses what the
 * run's state does not allow (no history event), the handler acts as the signal would and
 * answers the run's status. Used when the mirror lags behind the run.
 */
export const controlUpdate = defineUpdate<RunStatus, [ControlAction, ControlRequest]>('control');

export interface ApprovalDecision {
  approved: boolean;
  comment?: string;
  by: string;
  client?: string;
}
/** The decision for the approval node the run waits at (from REST or the phone). */
export const approvalSignal = defineSignal<[ApprovalDecision]>('approval');

// ---- the device lane ----------------------------------------------------------------------

/** A run's ask for its device's table lane. */
export interface LaneTicket {
  deviceId: string;
  taskId: string;
  /** The run's workflow id: where `laneGranted` goes. */
  workflowId: string;
  /** high 3, medium 2, low 1. */
  priorityRank: number;
  /** Submission time (ms): the order within one priority. */
  submittedAt: number;
}

/** Sent to the run its table lane grants the device to (by the releasing run's last write). */
export const laneGrantedSignal = defineSignal<[{ deviceId: string }]>('laneGranted');

export const TASK_RUN_WORKFLOW = 'taskRunWorkflow';
/** The activity whose scheduled inputs carry the run's durable events in history. */
export const RECORD_EVENTS_ACTIVITY = 'recordRunEvents';
/** Activities whose scheduled input may carry run events (`events`): a step's dispatch too. */
export const EVENT_CARRYING_ACTIVITIES: readonly string[] = [RECORD_EVENTS_ACTIVITY, 'dispatchStep'];
/** Local activities whose result carries the run events they wrote (read from their marker). */
export const EVENT_CARRYING_LOCAL_ACTIVITIES: readonly string[] = ['finishRun'];

export const workflowIdForTask = (taskId: string) => `task-${taskId}`;
/**
 * The task queue of an API node's device-step activities (activities/device-steps.ts): only the
 * node holding a device's socket can reach the device, so each node polls its own queue.
 */
export const deviceStepQueue = (nodeId: string) => `device-steps.${nodeId}`;
/** A step's idempotency key; a node visited again (in a loop) carries its visit number. */
export const stepKey = (taskId: string, nodeId: string, attempt: number, visit = 1) =>
  visit === 1 ? `${taskId}:${nodeId}:${attempt}` : `${taskId}:${nodeId}.${visit}:${attempt}`;
