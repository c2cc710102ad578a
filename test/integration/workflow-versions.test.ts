// A workflow's versions: listed, read, exported, run by number, and an older one made current
// again as a new version; owner-scoped, with the contract's codes for bad input.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { addDevice, eventually, linear, signup } from '../helpers/api.ts';
import { connectTestDevice } from '../helpers/devices.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let user: { token: string; userId: string };

beforeAll(async () => {
  sys = await startSystem();
  user = await signup(sys.api);
});
afterAll(async () => {
  await sys?.stop();
});

const V1 = linear([{ type: 'demo.echo', params: { said: 'one' } }]);
const V2 = linear([{ type: 'demo.echo', params: { said: 'two' } }]);

async function twoVersions(): Promise<string> {
  const created = await sys.api.post('/workflows', { name: 'Versioned', definition: V1, parameters: { type: 'object' } }, user.token);
  expect(created.status).toBe(201);
  const id = created.body.data.workflow.id as string;
  expect((await sys.api.put(`/workflows/${id}`, { definition: V2 }, user.token)).body.data.workflow.version).toBe(2);
  return id;
}

describe('workflow versions', () => {
  it('lists versions newest first and reads or exports any of them', async () => {
    const id = await twoVersions();
    const list = await sys.api.get(`/workflows/${id}/versions`, user.token);
    expect(list.status).toBe(200);
    expect(list.body.data.total).toBe(2);
    expect(list.body.data.list.map((v: { version: number; is_current: boolean }) => [v.version, v.is_current])).toEqual([[2, true], [1, false]]);
    expect(list.body.data.list[0]).not.toHaveProperty('definition');

    const one = await sys.api.get(`/workflows/${id}/versions/1`, user.token);
    expect(one.status).toBe(200);
    expect(one.body.data.version).toMatchObject({ workflow_id: id, version: 1, is_current: false, definition: V1, parameters: { type: 'object' } });
    expect(one.body.data.version.id).toBe(list.body.data.list[1].id);

    const exported = await sys.api.get(`/workflows/${id}/versions/1/export`, user.token);
    expect(exported.status).toBe(200);
    expect(exported.body.data.workflow).toMatchObject({ name: 'Versioned', version: 1, definition: V1 });
    // The document imports as a new workflow whose definition is that version's.
    const imported = await sys.api.post('/workflows/import', exported.body.data, user.token);
    expect([imported.status, imported.body.data.workflow.definition]).toEqual([201, V1]);
  });

  it('makes an older version current as a new version; the current one again changes nothing', async () => {
    const id = await twoVersions();
    const restored = await sys.api.post(`/workflows/${id}/versions/1/restore`, {}, user.token);
    expect(restored.status).toBe(201);
    expect(restored.body.data.workflow).toMatchObject({ version: 3, definition: V1, parameters: { type: 'object' } });
    expect((await sys.api.get(`/workflows/${id}`, user.token)).body.data.workflow.definition).toEqual(V1);
    // The history is kept: version 2 is still there, as it was.
    expect((await sys.api.get(`/workflows/${id}/versions/2`, user.token)).body.data.version.definition).toEqual(V2);

    const again = await sys.api.post(`/workflows/${id}/versions/3/restore`, {}, user.token);
    expect([again.status, again.body.data.workflow.version]).toEqual([200, 3]);
    expect((await sys.api.get(`/workflows/${id}/versions`, user.token)).body.data.total).toBe(3);
  });

  it('runs a given version, not the current one', async () => {
    const id = await twoVersions();
    const device = await addDevice(sys.api, user.token);
    const dev = await connectTestDevice(sys.wsUrl, device.deviceToken);
    try {
      const v1 = (await sys.api.get(`/workflows/${id}/versions/1`, user.token)).body.data.version;
      const res = await sys.api.post('/tasks', { workflow_id: id, device_id: device.id, workflow_version: 1 }, user.token);
      expect(res.status).toBe(201);
      expect(res.body.data.task.workflow_version_id).toBe(v1.id);
      const done = await eventually(async () => {
        const t = (await sys.api.get(`/tasks/${res.body.data.task.id}`, user.token)).body.data.task;
        return t.status === 'completed' && t;
      }, 30_000, 'the run to complete');
      expect(done.steps.map((s: { output: unknown }) => s.output)).toEqual([{ echo: { said: 'one' } }]);
      expect(dev.dispatches(res.body.data.task.id).map((d) => d.params)).toEqual([{ said: 'one' }]);
    } finally {
      await dev.client.stop();
    }
  });

  it('answers 404 code 2001 for a missing version or another user\'s workflow, 400 code 1001 for a bad number', async () => {
    const id = await twoVersions();
    const other = await signup(sys.api);
    for (const [path, token] of [
      [`/workflows/${id}/versions/3`, user.token],
      [`/workflows/${id}/versions`, other.token],
      [`/workflows/${id}/versions/1`, other.token],
      [`/workflows/${id}/versions/1/export`, other.token],
    ] as const) {
      const res = await sys.api.get(path, token);
      expect([path, res.status, res.body.code]).toEqual([path, 404, 2001]);
    }
    expect((await sys.api.post(`/workflows/${id}/versions/1/restore`, {}, other.token)).status).toBe(404);
    const device = await addDevice(sys.api, user.token);
    const missing = await sys.api.post('/tasks', { workflow_id: id, device_id: device.id, workflow_version: 9 }, user.token);
    expect([missing.status, missing.body.code]).toEqual([404, 2001]);
    for (const bad of ['0', 'x', '1.5', '-1']) {
      const res = await sys.api.get(`/workflows/${id}/versions/${bad}`, user.token);
      expect([bad, res.status, res.body.code]).toEqual([bad, 400, 1001]);
    }
    const badRun = await sys.api.post('/tasks', { workflow_id: id, device_id: device.id, workflow_version: 'one' }, user.token);
    expect([badRun.status, badRun.body.data.errors[0].path]).toEqual([400, 'workflow_version']);
  });
});
