// The thin vertical slice, end to end on the real Temporal dev server and PostgreSQL:
// REST -> taskRunWorkflow -> device over WebSocket -> monitor events from history.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DeviceClient, abortableSleep, demoHandlers, type DeviceClientEvent } from '../../src/clients/device-client.ts';
import { MonitorClient } from '../../src/clients/monitor-client.ts';
import { SA } from '../../workflows/search-attributes.ts';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { recordHistory } from '../helpers/histories.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let user: { token: string; userId: string };
let device: { id: string; deviceToken: string };
let pc: DeviceClient;
const deviceEvents: DeviceClientEvent[] = [];
let monitor: MonitorClient;

beforeAll(async () => {
  sys = await startSystem();
  user = await signup(sys.api);
  device = await addDevice(sys.api, user.token);
  const handlers = {
    ...demoHandlers,
    // A step that ignores step/pause: the run must still hold at the next boundary.
    'test.stubborn': async (params: unknown, ctx: { signal: AbortSignal }) => {
      await abortableSleep(Number((params as { ms: number }).ms), ctx.signal);
      return { done: true };
    },
  };
  pc = new DeviceClient({ url: sys.wsUrl, token: device.deviceToken, handlers, onEvent: (e) => deviceEvents.push(e) });
  await pc.start();
  monitor = new MonitorClient({ url: sys.wsUrl, token: user.token });
  await monitor.start();
});

afterAll(async () => {
  await monitor?.stop();
  await pc?.stop();
  await sys?.stop();
});

async function submit(definition: unknown, parameters: Record<string, unknown> = {}) {
  const workflowId = await addWorkflow(sys.api, user.token, definition);
  const res = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: device.id, parameters }, user.token);
  expect(res.status).toBe(201);
  const taskId: string = res.body.data.task.id;
  monitor.subscribe(taskId);
  return { taskId, workflowId };
}

const kinds = (taskId: string) => monitor.eventsOf(taskId).filter((e) => e.seq !== undefined).map((e) => e.kind);
const dispatches = (taskId: string) =>
  deviceEvents.filter((e) => e.type === 'dispatch' && e.payload.task_id === taskId);
const ended = (taskId: string) => () => kinds(taskId).some((k) => k === 'run.completed' || k === 'run.failed' || k === 'run.cancelled');

describe('the slice', () => {
  it('runs a 3-step workflow on the device to completion, with templating and a full event stream', async () => {
    const { taskId } = await submit(
      linear([
        { type: 'demo.echo', name: 'Say hello', params: { text: 'hello {{params.who}}' } },
        { type: 'demo.echo', params: { previous: '{{s1.echo.text}}' } },
        { type: 'demo.echo', params: { n: 3 } },
      ]),
      { who: 'world' },
    );
    await monitor.waitFor(ended(taskId), 30_000, 'run end');
    expect(kinds(taskId)).toEqual([
      'run.pending', 'run.started',
      'step.dispatched', 'step.completed',
      'step.dispatched', 'step.completed',
      'step.dispatched', 'step.completed',
      'run.completed',
    ]);
    const seqs = monitor.eventsOf(taskId).map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));

    // The monitor reads history; the PostgreSQL mirror follows a moment later.
    const task = await eventually(async () => {
      const res = await sys.api.get(`/tasks/${taskId}`, user.token);
      expect(res.status).toBe(200);
      return res.body.data.task.status === 'completed' && res.body.data.task;
    }, 10_000, 'mirror completed');
    expect(task.progress).toBe(100);
    expect(task.steps.map((s: { step_id: string; status: string }) => [s.step_id, s.status])).toEqual([
      ['s1', 'completed'], ['s2', 'completed'], ['s3', 'completed'],
    ]);
    const isoTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
    expect(task.steps[0]).toMatchObject({
      key: `${taskId}:s1:1`, attempt: 1, output: { echo: { text: 'hello world' } }, error: null,
      started_at: expect.stringMatching(isoTime), finished_at: expect.stringMatching(isoTime),
    });
    expect(task).toMatchObject({ created_at: expect.stringMatching(isoTime), finished_at: expect.stringMatching(isoTime), last_seq: 9 });
    expect(task.result.s1).toEqual({ echo: { text: 'hello world' } });
    expect(task.result.s2).toEqual({ echo: { previous: 'hello world' } });
    expect(task.temporal.workflow_id).toBe(`task-${taskId}`);
    expect(task.temporal.ui_url).toContain(`/workflows/task-${taskId}`);

    // Events are mirrored in PostgreSQL with the same seq.
    const events = await sys.api.get(`/tasks/${taskId}/events?after_seq=2`, user.token);
    expect(events.body.data.list.map((e: { seq: number }) => e.seq)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    await recordHistory(`task-${taskId}`, 'linear-completed');
  });

  it('sets the search attributes operators find runs by', async () => {
    const { taskId, workflowId } = await submit(linear([{ type: 'demo.echo', params: {} }]));
    await monitor.waitFor(ended(taskId), 30_000, 'run end');
    const desc = await sys.temporal.workflow.getHandle(`task-${taskId}`).describe();
    const sa = desc.typedSearchAttributes;
    expect(sa.get(SA.TaskId)).toBe(taskId);
    expect(sa.get(SA.UserId)).toBe(user.userId);
    expect(sa.get(SA.DeviceId)).toBe(device.id);
    expect(sa.get(SA.WorkflowDefinitionId)).toBe(workflowId);
    expect(sa.get(SA.TaskStatus)).toBe('completed');
    expect(sa.get(SA.TaskPriority)).toBe(2);
    // Its device was free and connected: indexed `running` from the start, so the only
    // TaskStatus update in its history is the last one.
    const history = await sys.temporal.workflow.getHandle(`task-${taskId}`).fetchHistory();
    const statusOf = (fields: Record<string, { data?: Uint8Array | null }> | null | undefined) =>
      fields?.TaskStatus?.data ? JSON.parse(Buffer.from(fields.TaskStatus.data).toString()) : undefined;
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    expect(statusOf(started?.searchAttributes?.indexedFields as never)).toBe('running');
    const updates = (history.events ?? [])
      .map((e) => statusOf(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields as never))
      .filter((v) => v !== undefined);
    expect(updates).toEqual(['completed']);
    // And the visibility store answers queries by them.
    await eventually(async () => {
      const found = [];
      for await (const w of sys.temporal.workflow.list({ query: `TaskId = '${taskId}' AND TaskStatus = 'completed'` })) found.push(w);
      return found.length === 1;
    }, 15_000, 'visibility query');
  });

  it('takes a resume sent right after a pause, before the mirror shows the pause', async () => {
    const { taskId } = await submit(linear([
      { type: 'demo.sleep', params: { ms: 800 } },
      { type: 'demo.echo', params: {} },
    ]));
    await eventually(async () => dispatches(taskId).length === 1, 15_000, 'first dispatch');
    for (let i = 0; i < 3; i++) {
      // No wait in between: the PostgreSQL mirror cannot have caught up, the run has.
      expect((await sys.api.post(`/tasks/${taskId}/pause`, {}, user.token)).status).toBe(202);
      expect((await sys.api.post(`/tasks/${taskId}/resume`, {}, user.token)).status).toBe(202);
    }
    await monitor.waitFor(ended(taskId), 30_000, 'run end');
    expect(kinds(taskId).filter((k) => k === 'run.paused')).toHaveLength(3);
    expect(kinds(taskId).filter((k) => k === 'run.resumed')).toHaveLength(3);
    expect(kinds(taskId).at(-1)).toBe('run.completed');
  });

  it('when the mirror says no, the run decides: a lagging mirror does not refuse, a true no is 409', async () => {
    const { taskId } = await submit(linear([{ type: 'demo.sleep', params: { ms: 1500 } }]));
    await eventually(async () => dispatches(taskId).length === 1, 15_000, 'first dispatch');
    // A mirror behind the run: it says paused, the run is running. The run takes the pause.
    const em = sys.orm.em.fork();
    await em.execute(`update tasks set status = 'paused' where id = ?`, [taskId]);
    const pause = await sys.api.post(`/tasks/${taskId}/pause`, {}, user.token);
    expect(pause.status).toBe(202);
    expect(pause.body.data.status).toBe('paused');
    await monitor.waitFor(() => kinds(taskId).includes('run.paused'), 10_000, 'run.paused');
    // The same mirror, now true: the run's validator refuses a second pause, nothing happens.
    await em.execute(`update tasks set status = 'paused' where id = ?`, [taskId]);
    const again = await sys.api.post(`/tasks/${taskId}/pause`, {}, user.token);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe(3001);
    expect(again.body.message).toMatch(/cannot pause a run that is paused/);
    expect((await sys.api.post(`/tasks/${taskId}/resume`, {}, user.token)).status).toBe(202);
    await monitor.waitFor(ended(taskId), 30_000, 'run end');
    expect(kinds(taskId).filter((k) => k === 'run.paused')).toHaveLength(1);
  });

  it('when the run cannot answer (no worker), a control request the mirror refuses is accepted as a signal', async () => {
    const { taskId } = await submit(linear([{ type: 'demo.sleep', params: { ms: 2500 } }, { type: 'demo.echo', params: {} }]));
    await eventually(async () => dispatches(taskId).length === 1, 15_000, 'first dispatch');
    await sys.stopWorker();
    try {
      await sys.orm.em.fork().execute(`update tasks set status = 'paused' where id = ?`, [taskId]);
      const pause = await sys.api.post(`/tasks/${taskId}/pause`, {}, user.token);
      expect(pause.status).toBe(202);
    } finally {
      await sys.startWorker();
    }
    // The signal waited in history: the run pauses once a worker picks it up.
    await monitor.waitFor(() => kinds(taskId).includes('run.paused'), 20_000, 'run.paused');
    expect(kinds(taskId)).not.toContain('run.completed');
    expect((await sys.api.post(`/tasks/${taskId}/resume`, {}, user.token)).status).toBe(202);
    await monitor.waitFor(ended(taskId), 30_000, 'run end');
    expect(kinds(taskId).at(-1)).toBe('run.completed');
  });

  it('pause is forwarded to the step in flight, which holds until resume', async () => {
    const { taskId } = await submit(linear([
      { type: 'demo.sleep', params: { ms: 1000 } },
      { type: 'demo.echo', params: { after: 'pause' } },
    ]));
    await eventually(async () => dispatches(taskId).length === 1, 15_000, 'first dispatch');
    const pause = await sys.api.post(`/tasks/${taskId}/pause`, {}, user.token);
    expect(pause.status).toBe(202);
    expect(pause.body.data.status).toBe('paused');
    await monitor.waitFor(() => kinds(taskId).includes('run.paused'), 10_000, 'run.paused');
    await eventually(async () => deviceEvents.some((e) => e.type === 'control' && e.action === 'pause'), 10_000, 'step/pause');
    // demo.sleep honours step/pause: the step stops, and nothing else is dispatched.
    await new Promise((r) => setTimeout(r, 1500));
    expect(kinds(taskId)).not.toContain('step.completed');
    expect(dispatches(taskId)).toHaveLength(1);
    expect((await sys.api.get(`/tasks/${taskId}`, user.token)).body.data.task.status).toBe('paused');
    const again = await sys.api.post(`/tasks/${taskId}/pause`, {}, user.token);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe(3001);

    expect((await sys.api.post(`/tasks/${taskId}/resume`, {}, user.token)).status).toBe(202);
    await monitor.waitFor(ended(taskId), 30_000, 'run end');
    expect(kinds(taskId).at(-1)).toBe('run.completed');
    expect(dispatches(taskId)).toHaveLength(2);
    expect(deviceEvents.some((e) => e.type === 'control' && e.action === 'resume')).toBe(true);
    const paused = monitor.eventsOf(taskId).find((e) => e.kind === 'run.paused')!;
    expect(paused.data.by).toBe(user.userId);
    await recordHistory(`task-${taskId}`, 'paused-resumed');
  });

  it('pause holds the run at the next step boundary even when the device finishes its step', async () => {
    const { taskId } = await submit(linear([
      { type: 'test.stubborn', params: { ms: 800 } },
      { type: 'demo.echo', params: {} },
    ]));
    await eventually(async () => dispatches(taskId).length === 1, 15_000, 'first dispatch');
    expect((await sys.api.post(`/tasks/${taskId}/pause`, {}, user.token)).status).toBe(202);
    await monitor.waitFor(() => kinds(taskId).includes('step.completed'), 15_000, 'first step done');
    await new Promise((r) => setTimeout(r, 1500));
    expect(dispatches(taskId)).toHaveLength(1);
    expect((await sys.api.post(`/tasks/${taskId}/resume`, {}, user.token)).status).toBe(202);
    await monitor.waitFor(ended(taskId), 30_000, 'run end');
    expect(kinds(taskId)).toEqual([
      'run.pending', 'run.started', 'step.dispatched', 'run.paused', 'step.completed',
      'run.resumed', 'step.dispatched', 'step.completed', 'run.completed',
    ]);
  });

  it('cancel during a step sends step/abort and ends the run cancelled', async () => {
    const { taskId } = await submit(linear([
      { type: 'demo.sleep', params: { ms: 20_000 } },
      { type: 'demo.echo', params: {} },
    ]));
    await eventually(async () => dispatches(taskId).length === 1, 15_000, 'dispatch');
    const key = (dispatches(taskId)[0] as Extract<DeviceClientEvent, { type: 'dispatch' }>).payload.key;
    const res = await sys.api.post(`/tasks/${taskId}/cancel`, { reason: 'changed my mind' }, user.token);
    expect(res.status).toBe(202);
    await eventually(async () => deviceEvents.some((e) => e.type === 'control' && e.action === 'abort' && e.key === key), 10_000, 'step/abort');
    await monitor.waitFor(ended(taskId), 15_000, 'run end');
    expect(kinds(taskId).slice(-2)).toEqual(['run.cancel_requested', 'run.cancelled']);
    expect(dispatches(taskId)).toHaveLength(1);
    const task = await eventually(async () => {
      const t = (await sys.api.get(`/tasks/${taskId}`, user.token)).body.data.task;
      return t.status === 'cancelled' && t;
    }, 10_000, 'mirror cancelled');
    expect(task.steps[0].status).toBe('cancelled');
    const again = await sys.api.post(`/tasks/${taskId}/cancel`, {}, user.token);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe(3001);
    await recordHistory(`task-${taskId}`, 'cancelled-mid-step');
  });

  it('a step error from the device fails the run with the device\'s code and message', async () => {
    const { taskId } = await submit(linear([{ type: 'demo.fail', params: { code: 'WINDOW_NOT_FOUND', message: 'no Notepad window' } }]));
    await monitor.waitFor(ended(taskId), 30_000, 'run end');
    expect(kinds(taskId)).toEqual(['run.pending', 'run.started', 'step.dispatched', 'step.failed', 'run.failed']);
    const task = await eventually(async () => {
      const t = (await sys.api.get(`/tasks/${taskId}`, user.token)).body.data.task;
      return t.status === 'failed' && t;
    }, 10_000, 'mirror failed');
    expect(task.error).toMatchObject({ code: 'WINDOW_NOT_FOUND', message: 'no Notepad window', step_id: 's1' });
    await recordHistory(`task-${taskId}`, 'step-failed');
  });
});

describe('the edges of the API', () => {
  it('rejects bad bodies with 400 code 1001 and the field path', async () => {
    const res = await sys.api.post('/tasks', { workflow_id: 'not-a-uuid', device_id: device.id, surprise: 1 }, user.token);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(1001);
    const paths = res.body.data.errors.map((e: { path: string }) => e.path);
    expect(paths).toContain('workflow_id');
    expect(paths).toContain('(root)'); // the unknown key

    const bad = await sys.api.post('/workflows', { name: 'x', definition: { nodes: [{ id: 'a', type: 'start' }, { id: 'b', type: 'end' }], edges: [{ from: 'a', to: 'zz' }] } }, user.token);
    expect(bad.status).toBe(400);
    expect(bad.body.data.errors[0].path).toBe('definition.edges.0.to');
    expect(bad.body.data.errors[0].message).toContain('zz');

    const json = await sys.api.req('POST', '/api/v1/tasks', { raw: '{"oops', token: user.token, headers: { 'Content-Type': 'application/json' } });
    expect(json.status).toBe(400);
    expect(json.body.code).toBe(1001);
  });

  it('answers 401 code 1002 without a valid token, and 404 for another user\'s task', async () => {
    const none = await sys.api.get('/tasks');
    expect(none.status).toBe(401);
    expect(none.body.code).toBe(1002);
    const forged = await sys.api.get('/tasks', `${user.token.slice(0, -4)}AAAA`);
    expect(forged.status).toBe(401);

    const { taskId } = await submit(linear([{ type: 'demo.echo', params: {} }]));
    const other = await signup(sys.api);
    const res = await sys.api.get(`/tasks/${taskId}`, other.token);
    expect(res.status).toBe(404);
    expect(res.body.code).toBe(2001);
    const ctl = await sys.api.post(`/tasks/${taskId}/cancel`, {}, other.token);
    expect(ctl.status).toBe(404);
  });

  it('refuses a WebSocket upgrade without a valid token with HTTP 401', async () => {
    const bad = new MonitorClient({ url: sys.wsUrl, token: 'nope' });
    await expect(bad.start()).rejects.toThrow('HTTP 401');
  });
});
