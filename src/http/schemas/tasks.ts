// Responses of /tasks: runs, their steps and their durable events.
import { z } from 'zod';
import { PRIORITIES, TASK_STATUSES } from '../../db/entities.ts';
import { EXAMPLE, instant, json, jsonObject, nullableInstant, pageOf, uuid } from './common.ts';

const runError = z.looseObject({
  code: z.string(),
  message: z.string(),
  step_id: z.string().optional(),
}).describe('Why the run or step failed; other fields depend on the code');

export const TaskStep = z.strictObject({
  step_id: z.string().describe('The node id in the definition'),
  name: z.string().nullable(),
  type: z.string(),
  attempt: z.int().min(1),
  key: z.string().describe('Idempotency key of this attempt on the device'),
  status: z.enum(['running', 'completed', 'failed', 'cancelled']),
  output: json,
  error: runError.nullable(),
  started_at: nullableInstant,
  finished_at: nullableInstant,
}).meta({
  id: 'TaskStep',
  examples: [{
    step_id: 's1', name: 'Say hi', type: 'demo.echo', attempt: 1, key: `${EXAMPLE.taskId}:s1:1`, status: 'completed',
    output: { text: 'hi' }, error: null, started_at: EXAMPLE.at, finished_at: '2026-03-02T09:15:01.250Z',
  }],
});

/** The last `step/progress` of the running step (recorded at most every few seconds). */
export const StepProgress = z.strictObject({
  step_id: z.string(),
  attempt: z.int().min(1),
  percent: z.number().min(0).max(100).nullable(),
  message: z.string().nullable(),
  at: instant.describe('When the device reported it'),
}).meta({ id: 'StepProgress', examples: [{ step_id: 's1', attempt: 1, percent: 40, message: 'copying 4 of 10', at: EXAMPLE.at }] });

const taskFields = {
  id: uuid,
  workflow_id: uuid,
  workflow_version_id: uuid,
  device_id: uuid,
  workflow_name: z.string().nullable().describe('The workflow\'s name now (null only if it is gone)'),
  device_name: z.string().nullable().describe('The device\'s name now (null only if it is gone)'),
  status: z.enum(TASK_STATUSES),
  status_reason: z.string().nullable(),
  priority: z.enum(PRIORITIES),
  parameters: jsonObject,
  idempotency_key: z.string().nullable(),
  current_node: z.string().nullable(),
  progress: z.int().min(0).max(100),
  result: json,
  error: runError.nullable(),
  last_seq: z.int().min(0).describe('Seq of the last durable event'),
  created_at: instant,
  started_at: nullableInstant,
  finished_at: nullableInstant,
  duration_ms: z.int().min(0).nullable(),
  temporal: z.strictObject({
    workflow_id: z.string(),
    run_id: z.string().nullable(),
    ui_url: z.url().optional().describe('The run in the Temporal UI, when TEMPORAL_UI_URL is set'),
  }),
  steps: z.array(TaskStep).optional().describe('Only on GET /tasks/{id}'),
};
const taskExample = {
  id: EXAMPLE.taskId, workflow_id: EXAMPLE.workflowId, workflow_version_id: EXAMPLE.versionId, device_id: EXAMPLE.deviceId,
  workflow_name: 'Say hi', device_name: 'Office PC', status: 'completed', status_reason: null, priority: 'medium', parameters: {}, idempotency_key: null, current_node: null,
  progress: 100, result: { outputs: { s1: { text: 'hi' } } }, error: null, last_seq: 6, created_at: EXAMPLE.at,
  started_at: EXAMPLE.at, finished_at: '2026-03-02T09:15:01.300Z', duration_ms: 1300,
  temporal: { workflow_id: `task-${EXAMPLE.taskId}`, run_id: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d' },
};

export const Task = z.strictObject(taskFields).meta({ id: 'Task', examples: [taskExample] });

/** GET /tasks/{id}: the task with its steps and, while it waits, its place in the device's lane. */
export const TaskDetail = z.strictObject({
  ...taskFields,
  queue_position: z.int().min(0).nullable().describe('0: holds the device; n: n-th in line; null: not waiting or unknown'),
  step_progress: StepProgress.nullable().describe('The running step\'s last progress report; null when no step is running or it reported none'),
}).meta({
  id: 'TaskDetail',
  examples: [{ ...taskExample, steps: TaskStep.meta()?.examples, queue_position: null, step_progress: null }],
});

export const taskData = z.strictObject({ task: Task });
export const taskDetailData = z.strictObject({ task: TaskDetail });
export const taskPage = pageOf(Task);
export const retryData = z.strictObject({ task: Task, retry_of: uuid });

export const controlData = z.strictObject({
  task_id: uuid,
  status: z.enum(TASK_STATUSES).describe('The run\'s status after the request'),
  action: z.enum(['pause', 'resume', 'cancel']),
}).meta({ examples: [{ task_id: EXAMPLE.taskId, status: 'paused', action: 'pause' }] });

export const approvalData = z.strictObject({ task_id: uuid, approved: z.boolean() });

export const TaskEvent = z.strictObject({
  task_id: uuid,
  seq: z.int().min(1),
  kind: z.string().describe('run.* or step.* (docs/PROTOCOL.md lists them)'),
  at: z.int().describe('Unix time in milliseconds'),
  data: jsonObject,
}).meta({
  id: 'TaskEvent',
  examples: [{ task_id: EXAMPLE.taskId, seq: 1, kind: 'run.started', at: 1_772_442_900_000, data: {} }],
});

export const eventList = z.strictObject({
  list: z.array(TaskEvent),
  next_after_seq: z.int().min(0).describe('Pass as after_seq for the next page'),
});
