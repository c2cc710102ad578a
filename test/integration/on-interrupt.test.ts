// A device step the PC stopped in the middle of (the app SIGKILLed mid-step, started again with
// its key store): the app answers the re-dispatch STEP_INTERRUPTED, and the node's onInterrupt
// decides: `retry` a new attempt as the retry policy allows, `fail` the run, `ask` the person
// ("the PC stopped during <step>; run it again?") and go on as answered. Real device processes,
// real Temporal, real sockets.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { DeviceProcess } from '../helpers/device-process.ts';
import { recordHistory } from '../helpers/histories.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let user: { token: string; userId: string };
let app: DeviceProcess;
let deviceId: string;

beforeAll(async () => {
  sys = await startSystem();
  user = await signup(sys.api);
  const device = await addDevice(sys.api, user.token);
  deviceId = device.id;
  app = new DeviceProcess(sys.wsUrl, device.deviceToken);
  await app.start();
});

afterAll(async () => {
  await app?.stop();
  await sys?.stop();
});

interface Task {
  status: string;
  status_reason: string | null;
  error: { code: string; message: string } | null;
  steps: { attempt: number; status: string; error: { code?: string } | null }[];
}

const getTask = async (taskId: string): Promise<Task> => (await sys.api.get(`/tasks/${taskId}`, user.token)).body.data.task;
const ended = (taskId: string) => eventually(async () => {
  const t = await getTask(taskId);
  return ['completed', 'failed', 'cancelled'].includes(t.status) && t;
}, 40_000, 'the run to end');
const events = async (taskId: string): Promise<{ kind: string; data: Record<string, unknown> }[]> =>
  (await sys.api.get(`/tasks/${taskId}/events`, user.token)).body.data.list;
const kinds = async (taskId: string) => (await events(taskId)).map((e) => e.kind).filter((k) => k !== 'step.progress');

/** Submits one slow `test.effect` step, kills the app once the step's effect began, starts it again. */
async function interruptFirstStep(step: { name?: string; onInterrupt?: 'retry' | 'fail' | 'ask'; retry: { maxAttempts: number; initialIntervalMs?: number } }) {
  const wf = await addWorkflow(sys.api, user.token, linear([{ type: 'test.effect', params: { ms: 4000 }, ...step }]));
  const res = await sys.api.post('/tasks', { workflow_id: wf, device_id: deviceId }, user.token);
  expect(res.status).toBe(201);
  const taskId = res.body.data.task.id as string;
  await eventually(async () => app.effects(taskId).length === 1, 20_000, 'the step to start on the PC');
  await app.kill();
  await app.start();
  return { taskId, key: (attempt: number) => `${taskId}:s1:${attempt}` };
}

const stepRows = (t: Task) => t.steps.map((s) => [s.attempt, s.status, s.error?.code ?? null]);

describe('onInterrupt: a device app killed in the middle of a step', () => {
  it('retry: a new attempt under a new key, each key\'s effect once', async () => {
    const { taskId, key } = await interruptFirstStep({ onInterrupt: 'retry', retry: { maxAttempts: 2, initialIntervalMs: 100 } });
    const task = await ended(taskId);
    expect(task.status).toBe('completed');
    expect(app.effects(taskId)).toEqual([key(1), key(2)]);
    expect(stepRows(task)).toEqual([[1, 'failed', 'STEP_INTERRUPTED'], [2, 'completed', null]]);
    await recordHistory(`task-${taskId}`, 'interrupted-retried');
  }, 90_000);

  it('fail: the run fails with STEP_INTERRUPTED although the retry policy would allow more attempts', async () => {
    const { taskId, key } = await interruptFirstStep({ onInterrupt: 'fail', retry: { maxAttempts: 3, initialIntervalMs: 100 } });
    const task = await ended(taskId);
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('STEP_INTERRUPTED');
    expect(app.effects(taskId)).toEqual([key(1)]);
    expect(stepRows(task)).toEqual([[1, 'failed', 'STEP_INTERRUPTED']]);
    const failed = (await events(taskId)).find((e) => e.kind === 'step.failed')!;
    expect(failed.data).toMatchObject({ will_retry: false, on_interrupt: 'fail' });
    await recordHistory(`task-${taskId}`, 'interrupted-failed');
  }, 90_000);

  it('ask, approved: the run waits for the person, then runs the step again (beyond maxAttempts)', async () => {
    const { taskId, key } = await interruptFirstStep({ name: 'Copy the invoices', onInterrupt: 'ask', retry: { maxAttempts: 1 } });
    const waiting = await eventually(async () => {
      const t = await getTask(taskId);
      return t.status_reason === 'waiting_approval' && t;
    }, 30_000, 'the run to ask');
    expect(waiting.status).toBe('running');
    const asked = (await events(taskId)).find((e) => e.kind === 'run.waiting_approval')!;
    expect(asked.data).toMatchObject({
      step_id: 's1', message: 'the PC stopped during Copy the invoices; run it again?', interrupted: { key: key(1), attempt: 1 },
    });
    expect(app.effects(taskId)).toEqual([key(1)]); // nothing ran again before the answer
    const res = await sys.api.post(`/tasks/${taskId}/approval`, { approved: true, comment: 'it did not copy' }, user.token);
    expect(res.status).toBe(202);
    const task = await ended(taskId);
    expect(task.status).toBe('completed');
    expect(app.effects(taskId)).toEqual([key(1), key(2)]);
    expect(stepRows(task)).toEqual([[1, 'failed', 'STEP_INTERRUPTED'], [2, 'completed', null]]);
    // Before the answer the run waited for its device (pending) and dispatched the key again.
    const seen = await kinds(taskId);
    const failedAt = seen.indexOf('step.failed');
    expect(new Set(seen.slice(0, failedAt))).toEqual(new Set(['run.pending', 'run.started', 'step.dispatched']));
    expect(seen.slice(failedAt)).toEqual([
      'step.failed', 'run.waiting_approval', 'run.approval_decided', 'step.dispatched', 'step.completed', 'run.completed',
    ]);
    const decided = (await events(taskId)).find((e) => e.kind === 'run.approval_decided')!;
    expect(decided.data).toMatchObject({ step_id: 's1', approved: true, by: user.userId, comment: 'it did not copy', timed_out: false });
    await recordHistory(`task-${taskId}`, 'interrupted-asked');
  }, 90_000);

  it('ask, rejected: the run fails with STEP_INTERRUPTED and says who said no', async () => {
    const { taskId, key } = await interruptFirstStep({ onInterrupt: 'ask', retry: { maxAttempts: 3 } });
    await eventually(async () => (await getTask(taskId)).status_reason === 'waiting_approval', 30_000, 'the run to ask');
    expect((await sys.api.post(`/tasks/${taskId}/approval`, { approved: false }, user.token)).status).toBe(202);
    const task = await ended(taskId);
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('STEP_INTERRUPTED');
    expect(task.error?.message).toContain(`${user.userId} said no`);
    expect(app.effects(taskId)).toEqual([key(1)]);
  }, 90_000);

  it('onInterrupt is for device steps only, and one of retry, fail, ask', async () => {
    const control = { nodes: [{ id: 'start', type: 'start', onInterrupt: 'ask' }, { id: 'end', type: 'end' }], edges: [{ from: 'start', to: 'end' }] };
    const bad = await sys.api.post('/workflows', { name: 'x', definition: control }, user.token);
    expect(bad.status).toBe(400);
    expect(bad.body.data.errors).toEqual([{ path: 'definition.nodes.0', message: 'node "start": retry, timeouts and onInterrupt apply to device steps only' }]);
    const unknown = await sys.api.post('/workflows', { name: 'x', definition: linear([{ type: 'test.effect', onInterrupt: 'later' as 'ask' }]) }, user.token);
    expect(unknown.status).toBe(400);
    expect(unknown.body.data.errors[0].path).toBe('definition.nodes.1.onInterrupt');
  });
});
