// A workflow's `parameters` is a JSON Schema (draft 2020-12): checked when a version is saved;
// POST /tasks and POST /schedules validate a run's parameters against the version they run,
// fill its defaults, and name each bad field in the 400.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { addDevice, linear, signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let user: { token: string };
let deviceId: string;

beforeAll(async () => {
  sys = await startSystem();
  user = await signup(sys.api);
  deviceId = (await addDevice(sys.api, user.token)).id;
});
afterAll(async () => {
  await sys?.stop();
});

const DEF = linear([{ type: 'demo.echo' }]);
const SCHEMA = {
  type: 'object',
  properties: {
    folder: { type: 'string', minLength: 1, title: 'Folder' },
    keep_days: { type: 'integer', minimum: 1, default: 30 },
    notify: { type: 'object', properties: { email: { type: 'string', format: 'email' } }, default: {} },
  },
  required: ['folder'],
  additionalProperties: false,
};

const paths = (res: { body: { data: { errors: { path: string }[] } } }) => res.body.data.errors.map((e) => e.path).sort();

describe('parameter schemas', () => {
  it('refuses a workflow whose parameters are not a valid schema, naming the fault', async () => {
    for (const [parameters, path] of [
      [{ type: 'objekt' }, 'parameters.type'],
      [{ type: 'object', requried: ['x'] }, 'parameters'], // a typo: unknown keyword
      [{ type: 'object', properties: { a: { type: 'string', format: 'e-mail' } } }, 'parameters'],
      [{ $ref: 'https://example.com/schema.json' }, 'parameters'],
    ] as const) {
      const res = await sys.api.post('/workflows', { name: 'bad schema', definition: DEF, parameters }, user.token);
      expect([JSON.stringify(parameters), res.status, res.body.code]).toEqual([JSON.stringify(parameters), 400, 1001]);
      expect(paths(res)).toContain(path);
    }
    const ok = await sys.api.post('/workflows', { name: 'good schema', definition: DEF, parameters: SCHEMA }, user.token);
    expect(ok.status).toBe(201);
    // A new version's schema is checked too.
    const put = await sys.api.put(`/workflows/${ok.body.data.workflow.id}`, { parameters: { type: 'object', minProperties: -1 } }, user.token);
    expect([put.status, paths(put)]).toEqual([400, ['parameters.minProperties']]);
  });

  it('validates a run\'s parameters against the version it runs and fills the defaults', async () => {
    const wf = (await sys.api.post('/workflows', { name: 'cleanup', definition: DEF, parameters: SCHEMA }, user.token)).body.data.workflow;
    const bad = await sys.api.post('/tasks', {
      workflow_id: wf.id, device_id: deviceId, parameters: { keep_days: 0, extra: true, notify: { email: 'not an address' } },
    }, user.token);
    expect([bad.status, bad.body.code]).toEqual([400, 1001]);
    expect(paths(bad)).toEqual(['parameters.extra', 'parameters.folder', 'parameters.keep_days', 'parameters.notify.email']);

    const good = await sys.api.post('/tasks', { workflow_id: wf.id, device_id: deviceId, parameters: { folder: 'C:/tmp' } }, user.token);
    expect(good.status).toBe(201);
    expect(good.body.data.task.parameters).toEqual({ folder: 'C:/tmp', keep_days: 30, notify: {} });

    // Version 2 requires nothing; version 1 still does, when run by number.
    await sys.api.put(`/workflows/${wf.id}`, { parameters: { type: 'object', properties: { folder: { type: 'string', default: 'D:/' } } } }, user.token);
    const v2 = await sys.api.post('/tasks', { workflow_id: wf.id, device_id: deviceId }, user.token);
    expect([v2.status, v2.body.data.task.parameters]).toEqual([201, { folder: 'D:/' }]);
    const v1 = await sys.api.post('/tasks', { workflow_id: wf.id, device_id: deviceId, workflow_version: 1 }, user.token);
    expect([v1.status, paths(v1)]).toEqual([400, ['parameters.folder']]);
  });

  it('checks a schedule\'s parameters when it is made', async () => {
    const wf = (await sys.api.post('/workflows', { name: 'nightly', definition: DEF, parameters: SCHEMA }, user.token)).body.data.workflow;
    const bad = await sys.api.post('/schedules', { workflow_id: wf.id, device_id: deviceId, cron: '0 3 * * *', parameters: { keep_days: 'many' } }, user.token);
    expect([bad.status, bad.body.code, paths(bad)]).toEqual([400, 1001, ['parameters.folder', 'parameters.keep_days']]);
    const good = await sys.api.post('/schedules', { workflow_id: wf.id, device_id: deviceId, cron: '0 3 * * *', parameters: { folder: 'C:/' } }, user.token);
    expect(good.status).toBe(201);
    await sys.api.del(`/schedules/${good.body.data.schedule.id}`, user.token);
  });

  it('matches patterns in linear time, and refuses patterns RE2 cannot run', async () => {
    const lookahead = await sys.api.post('/workflows', { name: 'lookahead', definition: DEF, parameters: { type: 'object', properties: { a: { type: 'string', pattern: '^(?=x)' } } } }, user.token);
    expect([lookahead.status, paths(lookahead)]).toEqual([400, ['parameters']]);
    const evil = { type: 'object', properties: { a: { type: 'string', pattern: '^(a+)+$' } } };
    const wf = (await sys.api.post('/workflows', { name: 'evil pattern', definition: DEF, parameters: evil }, user.token)).body.data.workflow;
    // Catastrophic for a backtracking engine (2^n paths); answered at once here.
    const started = Date.now();
    const res = await sys.api.post('/tasks', { workflow_id: wf.id, device_id: deviceId, parameters: { a: `${'a'.repeat(50_000)}!` } }, user.token);
    expect([res.status, paths(res)]).toEqual([400, ['parameters.a']]);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('takes any parameters for a workflow without a schema', async () => {
    const wf = (await sys.api.post('/workflows', { name: 'free', definition: DEF }, user.token)).body.data.workflow;
    const res = await sys.api.post('/tasks', { workflow_id: wf.id, device_id: deviceId, parameters: { anything: [1, 'two'] } }, user.token);
    expect([res.status, res.body.data.task.parameters]).toEqual([201, { anything: [1, 'two'] }]);
  });
});
