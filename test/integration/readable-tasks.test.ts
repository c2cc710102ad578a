// What the phone reads: tasks carry their workflow's and device's names, GET /tasks/:id shows the
// running step's last progress (recorded throttled), and the dashboard has a month window,
// failures by error code, runs per workflow, and counts unfinished runs in every window.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Task, WorkflowVersion, type TaskStatus } from '../../src/db/entities.ts';
import { dbOf, sql } from '../../src/db/sql.ts';
import { StepProgressRecorder } from '../../src/domain/step-progress.ts';
import { createLogger } from '../../src/logger.ts';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { connectTestDevice, testHandlers } from '../helpers/devices.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;

beforeAll(async () => {
  sys = await startSystem();
});
afterAll(async () => {
  await sys?.stop();
});

const DAY = 24 * 3600 * 1000;

describe('task names', () => {
  it('lists and reads tasks with their workflow\'s and device\'s names as they are now', async () => {
    const u = await signup(sys.api);
    const device = await addDevice(sys.api, u.token);
    const dev = await connectTestDevice(sys.wsUrl, device.deviceToken);
    try {
      const workflowId = await addWorkflow(sys.api, u.token, linear([{ type: 'demo.echo' }]), 'Backup photos');
      const created = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: device.id }, u.token);
      expect(created.body.data.task).toMatchObject({ workflow_name: 'Backup photos', device_name: 'Test PC' });
      const id = created.body.data.task.id as string;

      expect((await sys.api.put(`/users/devices/${device.id}`, { device_name: 'Study laptop' }, u.token)).status).toBe(200);
      const list = await sys.api.get('/tasks', u.token);
      expect(list.body.data.list.map((t: { id: string; workflow_name: string; device_name: string }) => [t.id, t.workflow_name, t.device_name]))
        .toEqual([[id, 'Backup photos', 'Study laptop']]);
      const one = await sys.api.get(`/tasks/${id}`, u.token);
      expect(one.body.data.task).toMatchObject({ workflow_name: 'Backup photos', device_name: 'Study laptop' });
      // The same key again answers the existing task, with its names too.
      const again = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: device.id, idempotency_key: 'k1' }, u.token);
      const replay = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: device.id, idempotency_key: 'k1' }, u.token);
      expect([again.status, replay.status]).toEqual([201, 200]);
      expect(replay.body.data.task).toMatchObject({ id: again.body.data.task.id, workflow_name: 'Backup photos', device_name: 'Study laptop' });
    } finally {
      await dev.client.stop();
    }
  });
});

describe('step progress', () => {
  it('shows the running step\'s last progress on GET /tasks/:id, and none once the step is over', async () => {
    const u = await signup(sys.api);
    const device = await addDevice(sys.api, u.token);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const dev = await connectTestDevice(sys.wsUrl, device.deviceToken, {
      ...testHandlers(),
      'test.progress': async (_params, ctx) => {
        ctx.progress(10, 'starting');
        ctx.progress(30, 'a third done');
        await released;
        return { done: true };
      },
    });
    try {
      const workflowId = await addWorkflow(sys.api, u.token, linear([{ type: 'test.progress' }]));
      const id = (await sys.api.post('/tasks', { workflow_id: workflowId, device_id: device.id }, u.token)).body.data.task.id as string;
      // Two reports within the throttle interval: the later one is what stays.
      const shown = await eventually(async () => {
        const p = (await sys.api.get(`/tasks/${id}`, u.token)).body.data.task.step_progress;
        return p?.message === 'a third done' && p;
      }, 20_000, 'the last progress on the task');
      expect(shown).toMatchObject({ step_id: 's1', attempt: 1, percent: 30, message: 'a third done' });
      expect(Math.abs(Date.parse(shown.at) - Date.now())).toBeLessThan(60_000);

      release();
      const done = await eventually(async () => {
        const t = (await sys.api.get(`/tasks/${id}`, u.token)).body.data.task;
        return t.status === 'completed' && t;
      }, 20_000, 'the run to complete');
      expect(done.step_progress).toBeNull();
    } finally {
      release();
      await dev.client.stop();
    }
  });

  it('writes a task\'s progress at most once per interval, ending with the latest report', async () => {
    const u = await signup(sys.api);
    const device = await addDevice(sys.api, u.token);
    const workflowId = await addWorkflow(sys.api, u.token, linear([{ type: 'demo.echo' }]));
    const id = await insertTask(u.userId, workflowId, device.id, 'running', new Date());
    const db = await dbOf(sys.orm);
    const stored = async () => (await db.one<{ p: { percent: number } | null }>(sql`select step_progress as p from tasks where id = ${id}`))?.p?.percent;
    const report = (percent: number) => ({ step_id: 's1', key: `${id}:s1:1`, attempt: 1, percent, at: Date.now() });

    const recorder = new StepProgressRecorder(sys.orm, createLogger('silent'), 1500);
    try {
      recorder.record(u.userId, id, report(1));
      await eventually(async () => (await stored()) === 1, 5000, 'the first report written at once');
      for (let p = 2; p <= 20; p++) recorder.record(u.userId, id, report(p));
      await new Promise((r) => setTimeout(r, 500));
      expect(await stored()).toBe(1); // within the interval: not written yet
      await eventually(async () => (await stored()) === 20, 5000, 'the latest report after the interval');
      // Another user's task is not written through a report naming it, and an older report
      // (a slow write landing late) does not undo a newer one.
      const other = await signup(sys.api);
      recorder.record(other.userId, id, report(99));
      await new Promise((r) => setTimeout(r, 1700));
      recorder.record(u.userId, id, { ...report(7), at: Date.now() - 60_000 });
      await new Promise((r) => setTimeout(r, 1700));
      expect(await stored()).toBe(20);
    } finally {
      recorder.stop();
    }
  });
});

describe('stats', () => {
  it('adds the month window, failures by code and runs per workflow; unfinished runs count today', async () => {
    const u = await signup(sys.api);
    const device = await addDevice(sys.api, u.token);
    const a = await addWorkflow(sys.api, u.token, linear([{ type: 'demo.echo' }]), 'Alpha');
    const b = await addWorkflow(sys.api, u.token, linear([{ type: 'demo.echo' }]), 'Beta');
    const now = Date.now();
    const midnight = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate());
    const today = new Date(Math.max(midnight + 1000, now - 60_000));
    const add = (wf: string, status: TaskStatus, at: Date, code?: string) => insertTask(u.userId, wf, device.id, status, at, code);
    await add(a, 'completed', today);
    await add(a, 'failed', today, 'STEP_TIMEOUT');
    await add(a, 'running', new Date(midnight - 2 * DAY)); // started before midnight, still running
    await add(a, 'failed', new Date(midnight - 10 * DAY), 'STEP_TIMEOUT');
    await add(b, 'failed', new Date(midnight - 20 * DAY), 'DEVICE_OFFLINE');
    await add(b, 'completed', new Date(midnight - 20 * DAY));
    await add(b, 'completed', new Date(midnight - 29 * DAY + 1000));
    await add(b, 'failed', new Date(midnight - 31 * DAY), 'OLD'); // outside the 30 days

    const s = (await sys.api.get('/stats/overview', u.token)).body.data;
    expect(s.today).toMatchObject({ total: 3, by_status: { pending: 0, running: 1, paused: 0, completed: 1, failed: 1, cancelled: 0 } });
    expect(s.last_7_days).toMatchObject({ total: 3, finished: 2 });
    expect(s.last_30_days).toMatchObject({
      since: new Date(midnight - 29 * DAY).toISOString(),
      total: 7,
      by_status: { pending: 0, running: 1, paused: 0, completed: 3, failed: 3, cancelled: 0 },
      finished: 6,
      success_rate: 0.5,
    });
    expect(s.failures_by_code).toEqual([{ code: 'STEP_TIMEOUT', count: 2 }, { code: 'DEVICE_OFFLINE', count: 1 }]);
    expect(s.workflows).toEqual([
      { workflow_id: a, name: 'Alpha', total: 4, completed: 1, failed: 2, success_rate: 0.3333 },
      { workflow_id: b, name: 'Beta', total: 3, completed: 2, failed: 1, success_rate: 0.6667 },
    ]);
  });
});

/** A task row written directly (no run). */
async function insertTask(userId: string, workflowId: string, deviceId: string, status: TaskStatus, createdAt: Date, code?: string): Promise<string> {
  const em = sys.orm.em.fork();
  const [version] = await em.find(WorkflowVersion, { workflowId });
  const id = randomUUID();
  const finished = ['completed', 'failed', 'cancelled'].includes(status);
  em.create(Task, {
    id, userId, workflowId, workflowVersionId: version.id, deviceId,
    status, statusReason: null, priority: 'medium', parameters: {}, idempotencyKey: null,
    temporalWorkflowId: `task-${id}`, temporalRunId: null, currentNode: null, progress: finished ? 100 : 0,
    result: null, error: code ? { code, message: 'failed' } : null, lastSeq: 0, createdAt, updatedAt: createdAt,
    startedAt: status === 'pending' ? null : createdAt, finishedAt: finished ? createdAt : null, durationMs: finished ? 0 : null,
  });
  await em.flush();
  return id;
}
