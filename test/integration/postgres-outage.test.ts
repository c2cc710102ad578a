// PostgreSQL killed (SIGKILL of the postmaster of a private cluster) while a run's steps are in
// flight: the API answers 503 in the contract's envelope (never a 500) and /readyz says
// PostgreSQL is away; once the server is back everything recovers by itself: the run finishes
// and its mirror in PostgreSQL catches up with the run's state in Temporal.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg_ from 'pg';
import WebSocket from 'ws';
import { MonitorClient } from '../../src/clients/monitor-client.ts';
import { createPersistenceActivities } from '../../activities/persistence.ts';
import { accountLimitsOf } from '../../src/config.ts';
import { migrate, openOrm } from '../../src/db/orm.ts';
import { stateQuery, workflowIdForTask, type RunState, type TaskRunResult } from '../../workflows/api.ts';
import { addDevice, addWorkflow, eventually, linear, signup, type Reply } from '../helpers/api.ts';
import { connectTestDevice, type TestDevice } from '../helpers/devices.ts';
import { PrivatePostgres } from '../../scripts/lib/private-postgres.ts';
import { startSystem, type System } from '../helpers/system.ts';

let pg: PrivatePostgres;
let sys: System;
let device: TestDevice;
let user: { token: string; userId: string; email: string };
let deviceId: string;

beforeAll(async () => {
  pg = await PrivatePostgres.create();
  const orm = await openOrm(pg.url);
  await migrate(orm);
  await orm.close();
  sys = await startSystem({ env: { DATABASE_URL: pg.url } });
  user = await signup(sys.api);
  const d = await addDevice(sys.api, user.token);
  deviceId = d.id;
  device = await connectTestDevice(sys.wsUrl, d.deviceToken);
}, 60_000);

afterAll(async () => {
  await device?.client.stop();
  // The system's shutdown writes to PostgreSQL: bring it back first if a failed test left it down.
  if (pg && pg.pid() === null) await pg.start();
  await sys?.stop();
  await pg?.stop();
});

/** A 5xx in the contract's envelope: code 5000, a plain sentence, no data, the request id. */
function expectUnavailable(res: Reply, what: string): void {
  if (res.status !== 503) throw new Error(`${what}: expected 503, got ${res.status} ${JSON.stringify(res.body)}`);
  expect(res.body).toEqual({
    code: 5000, message: 'a service this request needs is unavailable; retry later', data: null, request_id: expect.any(String),
  });
  expect(res.headers.get('retry-after')).toBe('5');
}

describe('PostgreSQL killed while steps are in flight', () => {
  it('answers 503 meanwhile, then the run finishes and the mirror catches up', async () => {
    const steps = [1, 2, 3, 4, 5].map((i) => ({ type: 'demo.sleep', params: { ms: 1200, i } }));
    const wf = await addWorkflow(sys.api, user.token, linear(steps));
    const res = await sys.api.post('/tasks', { workflow_id: wf, device_id: deviceId }, user.token);
    expect(res.status).toBe(201);
    const taskId = res.body.data.task.id as string;
    await eventually(async () => device.client.runningKeys.some((k) => k.startsWith(taskId)), 20_000, 'a step in flight');

    await pg.kill9();
    expect(device.client.runningKeys.filter((k) => k.startsWith(taskId))).toHaveLength(1); // the fault landed mid-step
    const dispatchedAtKill = device.dispatches(taskId).length;

    expectUnavailable(await sys.api.get(`/tasks/${taskId}`, user.token), 'GET /tasks/:id');
    expectUnavailable(await sys.api.get('/tasks', user.token), 'GET /tasks');
    expectUnavailable(await sys.api.post('/auth/login', { email: user.email, password: 'not the password' }), 'POST /auth/login');
    expectUnavailable(await sys.api.post('/tasks', { workflow_id: wf, device_id: deviceId }, user.token), 'POST /tasks');
    const ready = await sys.api.req('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.data).toEqual({ postgres: false, temporal: true });

    // The run goes on without PostgreSQL: a step is dispatched while it is down.
    await eventually(async () => device.dispatches(taskId).length > dispatchedAtKill, 10_000, 'a step dispatched during the outage');
    expect(pg.pid()).toBeNull();
    await pg.start();

    await eventually(async () => (await sys.api.req('GET', '/readyz')).status === 200, 30_000, 'ready again');
    const handle = sys.temporal.workflow.getHandle(workflowIdForTask(taskId));
    const result = await handle.result() as TaskRunResult;
    expect(result.status).toBe('completed');
    const state = await handle.query(stateQuery) as RunState;

    // The mirror catches up with the run's own state, field by field.
    const task = await eventually(async () => {
      const r = await sys.api.get(`/tasks/${taskId}`, user.token);
      return r.status === 200 && r.body.data.task.last_seq === state.lastSeq && r.body.data.task;
    }, 30_000, 'the mirror to catch up');
    expect(task.status).toBe(result.status);
    expect(task.result).toEqual(result.outputs);
    expect(task.error).toBeNull();
    expect(task.progress).toBe(state.progress);
    expect(task.steps.map((s: Record<string, unknown>) => [s.step_id, s.attempt, s.key, s.status, s.output ?? null]))
      .toEqual(state.steps.map((s) => [s.step_id, s.attempt, s.key, s.status, s.output ?? null]));
    const events = (await sys.api.get(`/tasks/${taskId}/events?limit=1000`, user.token)).body.data.list as { seq: number }[];
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: state.lastSeq }, (_, i) => i + 1));
    // Each step once on the device.
    expect(device.dispatches(taskId).map((d) => d.key)).toEqual(state.steps.map((s) => s.key));
  }, 120_000);
});

describe('a process whose first query comes while PostgreSQL is down', () => {
  // A task worker restarted just before PostgreSQL died: its ORM connects on first use, so its
  // first activity fails to connect. Once the server is back the next attempt must reach it (it
  // used to fail with that first ECONNREFUSED for as long as the process lived).
  it('reaches PostgreSQL once it is back', async () => {
    // The run's task row, with no task worker to touch it meanwhile.
    await sys.stopWorker();
    const wf = await addWorkflow(sys.api, user.token, linear([{ type: 'demo.sleep', params: { ms: 10 } }]));
    const res = await sys.api.post('/tasks', { workflow_id: wf, device_id: deviceId }, user.token);
    expect(res.status).toBe(201);
    const taskId = res.body.data.task.id as string;

    // What a worker process opens at start: no query yet.
    const orm = await openOrm(pg.url);
    const activities = createPersistenceActivities({
      orm, temporal: sys.temporal, taskQueue: sys.config.TASK_QUEUE, presenceStaleMs: 10_000, offlineTimeoutMs: 60_000,
      limits: accountLimitsOf(sys.config), artifactRetentionMs: 86_400_000,
    });
    const event = { seq: 1, kind: 'run.pending' as const, at: Date.now(), data: { reason: 'queued' } };
    try {
      await pg.kill9();
      await expect(activities.recordRunEvents({ taskId, events: [event] })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      await pg.start();
      // Temporal's retry: the same activity again, in the same process.
      await activities.recordRunEvents({ taskId, events: [event] });
    } finally {
      if (pg.pid() === null) await pg.start();
      await orm.close();
    }

    // Read with a client of the test's own, not through the code under test.
    const reader = new pg_.Client({ connectionString: pg.url });
    await reader.connect();
    try {
      const events = await reader.query('select seq, kind, data from task_events where task_id = $1 order by seq', [taskId]);
      expect(events.rows).toEqual([{ seq: 1, kind: 'run.pending', data: { reason: 'queued' } }]);
      const task = await reader.query('select last_seq from tasks where id = $1', [taskId]);
      expect(task.rows).toEqual([{ last_seq: 1 }]);
    } finally {
      await reader.end();
    }

    // The run itself goes on once a task worker is back.
    await sys.startWorker();
    const result = await sys.temporal.workflow.getHandle(workflowIdForTask(taskId)).result() as TaskRunResult;
    expect(result.status).toBe('completed');
  }, 90_000);
});

describe('a monitor whose socket drops while PostgreSQL is down', () => {
  /** The status line of a WebSocket upgrade with the user's token. */
  const upgradeStatus = () => new Promise<{ status: number; retryAfter?: string }>((res, rej) => {
    const ws = new WebSocket(sys.wsUrl, { headers: { Authorization: `Bearer ${user.token}` } });
    ws.on('unexpected-response', (_req, r) => {
      res({ status: r.statusCode ?? 0, retryAfter: r.headers['retry-after'] as string | undefined });
      r.resume();
      ws.terminate();
    });
    ws.on('open', () => { res({ status: 101 }); ws.close(); });
    ws.on('error', () => undefined);
    setTimeout(() => rej(new Error('no answer to the upgrade')), 10_000);
  });

  it('is refused 503 meanwhile, then reconnects and sees every event of the run once', async () => {
    if (!sys.worker) await sys.startWorker();
    const wf = await addWorkflow(sys.api, user.token, linear([1, 2, 3].map((i) => ({ type: 'demo.sleep', params: { ms: 1200, i } }))));
    const res = await sys.api.post('/tasks', { workflow_id: wf, device_id: deviceId }, user.token);
    expect(res.status).toBe(201);
    const taskId = res.body.data.task.id as string;
    const monitor = new MonitorClient({ url: sys.wsUrl, token: user.token, reconnect: true });
    await monitor.start();
    try {
      monitor.subscribe(taskId);
      await monitor.waitFor(() => monitor.eventsOf(taskId).some((e) => e.kind === 'step.dispatched'), 20_000, 'a step dispatched');

      await pg.kill9();
      expect(await upgradeStatus()).toEqual({ status: 503, retryAfter: '5' });
      monitor.drop();
      // Its reconnects meet the same refusal for a while.
      await new Promise((r) => setTimeout(r, 1500));
      expect(monitor.framesOf('hello')).toHaveLength(1);
      await pg.start();

      const result = await sys.temporal.workflow.getHandle(workflowIdForTask(taskId)).result() as TaskRunResult;
      expect(result.status).toBe('completed');
      await monitor.waitFor(() => monitor.eventsOf(taskId).some((e) => e.kind === 'run.completed'), 30_000, 'run.completed after the outage');
      expect(monitor.framesOf('hello').length).toBeGreaterThan(1);
      const seqs = monitor.eventsOf(taskId).filter((e) => e.seq !== undefined).map((e) => e.seq);
      const state = await sys.temporal.workflow.getHandle(workflowIdForTask(taskId)).query(stateQuery) as RunState;
      expect(seqs).toEqual(Array.from({ length: state.lastSeq }, (_, i) => i + 1));
    } finally {
      if (pg.pid() === null) await pg.start();
      await monitor.stop();
    }
  }, 90_000);
});
