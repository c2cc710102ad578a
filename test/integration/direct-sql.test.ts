// The statements the engine sends to the pool directly (src/db/sql.ts): prepared reads
// survive a migration that adds a column, and a submission lands its task and lane together.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { addDevice, addWorkflow, linear, signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let token: string;
let deviceId: string;
let workflowId: string;

beforeAll(async () => {
  sys = await startSystem();
  token = (await signup(sys.api)).token;
  deviceId = (await addDevice(sys.api, token)).id;
  workflowId = await addWorkflow(sys.api, token, linear([{ type: 'demo.echo' }]));
});

afterAll(async () => {
  await sys?.stop();
});

describe('direct statements', () => {
  it('prepared reads keep working when a migration adds a column to their table', async () => {
    const submitted = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: deviceId }, token);
    expect(submitted.status).toBe(201);
    const id = submitted.body.data.task.id as string;
    // Prepare the read on every connection of the pool (10), then change the table under them.
    const reads = () => Promise.all(Array.from({ length: 12 }, () => sys.api.get(`/tasks/${id}`, token)));
    expect((await reads()).map((r) => r.status)).toEqual(new Array(12).fill(200));
    const em = sys.orm.em.fork();
    await em.execute('alter table tasks add column added_later integer');
    await em.execute('alter table workflows add column added_later integer');
    try {
      const after = await reads();
      expect(after.map((r) => r.status)).toEqual(new Array(12).fill(200));
      expect(after[0].body.data.task.id).toBe(id);
      const again = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: deviceId }, token);
      expect(again.status).toBe(201);
    } finally {
      await em.execute('alter table tasks drop column added_later');
      await em.execute('alter table workflows drop column added_later');
    }
  });

  it('a submission writes its task and its place in the lane, or neither', async () => {
    const submitted = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: deviceId }, token);
    expect(submitted.status).toBe(201);
    const id = submitted.body.data.task.id as string;
    const em = sys.orm.em.fork();
    const [lane] = await em.execute<{ holder_task_id: string | null }[]>('select holder_task_id from device_lanes where device_id = ?', [deviceId]);
    const queued = await em.execute('select 1 from lane_requests where task_id = ?', [id]);
    const [task] = await em.execute<{ temporal_run_id: string | null }[]>('select temporal_run_id from tasks where id = ?', [id]);
    // The device holds it, or it waits in the queue (the first run may still hold the device).
    expect(lane.holder_task_id === id || queued.length === 1).toBe(true);
    expect(task.temporal_run_id).toBe(submitted.body.data.task.temporal.run_id);
    expect(task.temporal_run_id).toMatch(/^[0-9a-f-]{36}$/);
    // A submission for a device of another user: 404, and no row anywhere.
    const other = await signup(sys.api);
    const before = await em.execute<{ n: string }[]>('select count(*) as n from tasks');
    const refused = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: (await addDevice(sys.api, other.token)).id }, token);
    expect(refused.status).toBe(404);
    expect(refused.body.code).toBe(2001);
    expect(refused.body.message).toBe("device not found");
    const after = await em.execute<{ n: string }[]>('select count(*) as n from tasks');
    expect(after[0].n).toBe(before[0].n);
  });
});
