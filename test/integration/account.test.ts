// The account itself: a password change ends the other sessions; deleting the account ends its
// runs, removes its schedules in Temporal, closes its devices' and monitors' sockets, and leaves
// no row and no file of it behind (another account untouched).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ScheduleNotFoundError } from '@temporalio/client';
import WebSocket from 'ws';
import { dbOf, raw, sql } from '../../src/db/sql.ts';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { connectTestDevice } from '../helpers/devices.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;

beforeAll(async () => {
  // Many sign-ups and logins from one address: the auth bucket is not what is tested here.
  sys = await startSystem({ env: { RATE_LIMIT_AUTH_PER_MIN: '100000' } });
});
afterAll(async () => {
  await sys?.stop();
});

const PASSWORD = 'correct horse battery';

async function login(email: string, password = PASSWORD) {
  return sys.api.post('/auth/login', { email, password });
}

/** A monitor socket that has had its hello; `closed` resolves with its close code. */
async function monitor(token: string) {
  const ws = new WebSocket(`${sys.wsUrl}?token=${token}`);
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  await new Promise((r) => ws.once('message', r));
  return { ws, closed };
}

describe('password change', () => {
  it('ends every other session (their sockets close with 4401) and keeps this one', async () => {
    const { email } = await signup(sys.api);
    const a = (await login(email)).body.data;
    const b = (await login(email)).body.data;
    const bMonitor = await monitor(b.access_token);

    const changed = await sys.api.put('/users/password', { current_password: PASSWORD, new_password: 'a brand new secret' }, a.access_token);
    expect(changed.status).toBe(200);
    // signup's session and b's: two others.
    expect(changed.body.data).toEqual({ password_changed: true, sessions_ended: 2 });

    expect(await bMonitor.closed).toBe(4401);
    expect((await sys.api.get('/auth/me', b.access_token)).status).toBe(401);
    expect((await sys.api.post('/auth/refresh', { refresh_token: b.refresh_token })).status).toBe(401);
    expect((await sys.api.get('/auth/me', a.access_token)).status).toBe(200);
    expect((await sys.api.post('/auth/refresh', { refresh_token: a.refresh_token })).status).toBe(200);

    expect((await login(email)).status).toBe(401);
    expect((await login(email, 'a brand new secret')).status).toBe(200);
  });

  it('refuses a wrong current password, a short or unchanged new one, with 400 code 1001 naming the field', async () => {
    const { email, token } = await signup(sys.api);
    const cases: [unknown, string][] = [
      [{ current_password: 'not my password', new_password: 'another long one' }, 'current_password'],
      [{ current_password: PASSWORD, new_password: 'short' }, 'new_password'],
      [{ current_password: PASSWORD, new_password: PASSWORD }, 'new_password'],
      [{ current_password: PASSWORD }, 'new_password'],
    ];
    for (const [body, field] of cases) {
      const res = await sys.api.put('/users/password', body, token);
      expect([res.status, res.body.code]).toEqual([400, 1001]);
      expect(res.body.data.errors.map((e: { path: string }) => e.path)).toContain(field);
    }
    // Nothing changed: the old password still works, the session is open.
    expect((await login(email)).status).toBe(200);
    expect((await sys.api.get('/auth/me', token)).status).toBe(200);
    expect((await sys.api.put('/users/password', { current_password: PASSWORD, new_password: 'x'.repeat(12) })).status).toBe(401);
  });
});

describe('account deletion', () => {
  it('ends runs, removes schedules, closes sockets, and removes every row and file of the account', async () => {
    const user = await signup(sys.api);
    const other = await signup(sys.api);
    const otherWorkflow = await addWorkflow(sys.api, other.token, linear([{ type: 'demo.echo' }]));

    const device = await addDevice(sys.api, user.token);
    const dev = await connectTestDevice(sys.wsUrl, device.deviceToken);
    try {
      const workflowId = await addWorkflow(sys.api, user.token, linear([{ type: 'test.silent', params: { ms: 60_000 } }]));
      const task = (await sys.api.post('/tasks', { workflow_id: workflowId, device_id: device.id }, user.token)).body.data.task;
      await eventually(async () => dev.dispatches(task.id).length > 0, 20_000, 'the step reaching the device');
      const schedule = (await sys.api.post('/schedules', { workflow_id: workflowId, device_id: device.id, cron: '0 9 * * *' }, user.token)).body.data.schedule;
      const form = new FormData();
      form.append('file', new Blob(['hello']), 'note.txt');
      const up = await fetch(`${sys.url}/api/v1/files/upload`, { method: 'POST', body: form, headers: { Authorization: `Bearer ${user.token}` } });
      expect(up.status).toBe(201);
      // The upload's bytes, where every node reads them: the file's chunks in PostgreSQL.
      const db = await dbOf(sys.orm);
      const fileId = ((await up.json()) as { data: { file: { id: string } } }).data.file.id;
      const [{ key }] = await db.all<{ key: string }>(sql`select storage_key as key from files where id = ${fileId}`);
      const chunks = async () => (await db.all<{ n: number }>(sql`select count(*)::int as n from file_chunks where storage_key = ${key}`))[0].n;
      expect(await chunks()).toBeGreaterThan(0);
      const mon = await monitor(user.token);

      const wrong = await sys.api.post('/users/account/delete', { password: 'not my password' }, user.token);
      expect([wrong.status, wrong.body.code, wrong.body.data.errors[0].path]).toEqual([400, 1001, 'password']);

      const res = await sys.api.post('/users/account/delete', { password: PASSWORD }, user.token);
      expect(res.status).toBe(200);
      expect(res.body.data).toEqual({ deleted: true, runs_cancelled: 1, schedules_removed: 1, devices_disconnected: 1 });

      // Sockets: the monitor's session is revoked, the device's connection ends and its token is refused.
      expect(await mon.closed).toBe(4401);
      await eventually(async () => dev.events.find((e) => e.type === 'disconnected' && e.code === 4401), 10_000, 'the device closed with 4401');
      const again = await connectTestDevice(sys.wsUrl, device.deviceToken).then(async (d) => { await d.client.stop(); return 'connected'; }, (err: Error) => err.message);
      expect(again).toMatch(/401/);

      // Temporal: the run is over, the schedule gone.
      const run = await sys.temporal.workflow.getHandle(task.temporal.workflow_id).describe();
      expect(run.status.name).toBe('TERMINATED');
      await expect(sys.temporal.schedule.getHandle(`schedule-${schedule.id}`).describe())
        .rejects.toBeInstanceOf(ScheduleNotFoundError);

      // PostgreSQL: nothing of the account in any table that holds a user's rows.
      for (const table of ['users', 'devices', 'workflows', 'tasks', 'schedules', 'logs', 'files', 'sessions']) {
        const column = table === 'users' ? 'id' : 'user_id';
        const [row] = await db.all<{ n: number }>(sql`select count(*)::int as n from ${raw(table)} where ${raw(column)} = ${user.userId}`);
        expect([table, row.n]).toEqual([table, 0]);
      }
      expect(await chunks()).toBe(0);

      // The account's tokens and password are refused; the other account is untouched.
      expect((await sys.api.get('/auth/me', user.token)).status).toBe(401);
      expect((await login(user.email)).status).toBe(401);
      expect((await sys.api.get(`/workflows/${otherWorkflow}`, other.token)).status).toBe(200);
      // The email is free again.
      expect((await sys.api.post('/auth/register', { email: user.email, password: PASSWORD })).status).toBe(201);
    } finally {
      await dev.client.stop();
    }
  });

  it('answers two deletions at once without a 5xx: each 200, or 401 once the account is gone', async () => {
    const { token } = await signup(sys.api);
    const both = await Promise.all([1, 2, 3].map(() => sys.api.post('/users/account/delete', { password: PASSWORD }, token)));
    for (const res of both) expect([200, 401]).toContain(res.status);
    expect(both.some((r) => r.status === 200)).toBe(true);
    expect((await sys.api.get('/auth/me', token)).status).toBe(401);
  });

  it('refuses without a token (401) and with a bad body (400)', async () => {
    const { token } = await signup(sys.api);
    expect((await sys.api.post('/users/account/delete', { password: PASSWORD })).status).toBe(401);
    const extra = await sys.api.post('/users/account/delete', { password: PASSWORD, force: true }, token);
    expect([extra.status, extra.body.code]).toEqual([400, 1001]);
    expect((await sys.api.get('/auth/me', token)).status).toBe(200);
  });
});
