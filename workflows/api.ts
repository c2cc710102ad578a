// The task-run workflow's public surface: input, result, signals, queries and the events it
// records. Imported by the API (to start and steer runs) and by the workflow itself.
import { defineQuery, defineSignal } from '@temporalio/workflow';
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
  'run.pending', 'run.started', 'step.dispatched', 'step.progress', 'step.completed', 'step.failed',
  'run.paused', 'run.resumed', 'run.waiting_approval', 'run.cancel_requested',
  'run.completed', 'run.failed', 'run.cancelled', 'log',
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

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

export const TASK_RUN_WORKFLOW = 'taskRunWorkflow';
/** The activity whose scheduled inputs carry the run's durable events in history. */
export const RECORD_EVENTS_ACTIVITY = 'recordRunEvents';

export const workflowIdForTask = (taskId: string) => `task-${taskId}`;
export const gatewayQueue = (nodeId: string) => `device-gateway.${nodeId}`;
export const stepKey = (taskId: string, nodeId: string, attempt: number) => `${taskId}:${nodeId}:${attempt}`;
