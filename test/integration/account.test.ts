// The account itself: a password change ends the other sessions; deleting the account cancels
// its runs (the device mid-step, on another API node, gets step/abort), terminates those that do
// not end in time, removes its schedules in Temporal, closes its devices' and monitors' sockets
// on every node, and leaves no row and no file of it behind (another account untouched).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ScheduleNotFoundError } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import WebSocket from 'ws';
import { dbOf, raw, sql } from '../../src/db/sql.ts';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { connectTestDevice } from '../helpers/devices.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;

beforeAll(async () => {
  // Many sign-ups and logins from one address: the auth bucket is not what is tested here. Two
  // API nodes: the device holds its socket on the one the deletion does not reach.
  sys = await startSystem({ nodes: 2, env: { RATE_LIMIT_AUTH_PER_MIN: '100000', ACCOUNT_DELETE_RUNS_END_MS: String(RUNS_END_MS) } });
});
afterAll(async () => {
  await sys?.stop();
});

const PASSWORD = 'correct horse battery';
/** How long a deletion waits for its cancelled runs (a cancel ends a run in about a second). */
const RUNS_END_MS = 5000;
const otherNodeWs = () => `${sys.nodes[1].url.replace(/^http/, 'ws')}/ws`;

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
  it('cancels runs (the device mid-step on another node gets step/abort), removes schedules, closes sockets on every node, and removes every row and file', async () => {
    const user = await signup(sys.api);
    const other = await signup(sys.api);
    const otherWorkflow = await addWorkflow(sys.api, other.token, linear([{ type: 'demo.echo' }]));

    const device = await addDevice(sys.api, user.token);
    // Its socket is on node 1; every request below goes to node 0.
    const dev = await connectTestDevice(otherNodeWs(), device.deviceToken);
    try {
      const workflowId = await addWorkflow(sys.api, user.token, linear([{ type: 'test.silent', params: { ms: 60_000 } }]));
      const task = (await sys.api.post('/tasks', { workflow_id: workflowId, device_id: device.id }, user.token)).body.data.task;
      await eventually(async () => dev.dispatches(task.id).length > 0, 20_000, 'the step reaching the device');
      const key = dev.dispatches(task.id)[0].key;
      const schedule = (await sys.api.post('/schedules', { workflow_id: workflowId, device_id: device.id, cron: '0 9 * * *' }, user.token)).body.data.schedule;
      const form = new FormData();
      form.append('file', new Blob(['hello']), 'note.txt');
      const up = await fetch(`${sys.url}/api/v1/files/upload`, { method: 'POST', body: form, headers: { Authorization: `Bearer ${user.token}` } });
      expect(up.status).toBe(201);
      // The upload's bytes, where every node reads them: the file's chunks in PostgreSQL.
      const db = await dbOf(sys.orm);
      const fileId = ((await up.json()) as { data: { file: { id: string } } }).data.file.id;
      const [{ key: storageKey }] = await db.all<{ key: string }>(sql`select storage_key as key from files where id = ${fileId}`);
      const chunks = async () => (await db.all<{ n: number }>(sql`select count(*)::int as n from file_chunks where storage_key = ${storageKey}`))[0].n;
      expect(await chunks()).toBeGreaterThan(0);
      const mon = await monitor(user.token);

      const wrong = await sys.api.post('/users/account/delete', { password: 'not my password' }, user.token);
      expect([wrong.status, wrong.body.code, wrong.body.data.errors[0].path]).toEqual([400, 1001, 'password']);

      // While the deletion runs, what the task's row says, until it is gone: the run's last
      // write must land before the rows go.
      const seen: string[] = [];
      const watch = (async () => {
        for (const until = Date.now() + 30_000; Date.now() < until;) {
          const [row] = await db.all<{ status: string }>(sql`select status from tasks where id = ${task.id}`);
          const now = row?.status ?? 'gone';
          if (seen.at(-1) !== now) seen.push(now);
          if (!row) return;
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const res = await sys.api.post('/users/account/delete', { password: PASSWORD }, user.token);
      await watch;
      expect(res.status).toBe(200);
      expect(res.body.data).toEqual({ deleted: true, runs_cancelled: 1, runs_terminated: 0, schedules_removed: 1, devices_disconnected: 1 });
      expect(seen).toEqual(['running', 'cancelled', 'gone']);

      // The device's own journal: step/abort for the step it was running, then its socket closed
      // with 4401 by node 1, where it was connected; its token is refused from then on.
      await eventually(async () => dev.events.find((e) => e.type === 'disconnected'), 10_000, 'the device closed');
      const journal = dev.events.filter((e) => e.type === 'control' || e.type === 'disconnected');
      // The abort may come twice (the cancel's control frame, the dispatch's own cancellation).
      const aborts = journal.slice(0, -1);
      expect(aborts.length).toBeGreaterThan(0);
      for (const a of aborts) expect(a).toEqual({ type: 'control', action: 'abort', key });
      expect(journal.at(-1)).toEqual({ type: 'disconnected', code: 4401, reason: 'account deleted' });
      expect(await mon.closed).toBe(4401);
      for (const url of [sys.wsUrl, otherNodeWs()]) {
        const again = await connectTestDevice(url, device.deviceToken).then(async (d) => { await d.client.stop(); return 'connected'; }, (err: Error) => err.message);
        expect(again).toMatch(/401/);
      }

      // Temporal: the run ended by its cancellation (not terminated); no activity was tried twice,
      // and its last write (finishRun, a local activity: a marker) succeeded, while its rows were
      // there (above).
      // The schedule is gone.
      const handle = sys.temporal.workflow.getHandle(task.temporal.workflow_id);
      expect((await handle.describe()).status.name).toBe('COMPLETED');
      expect(await handle.result()).toMatchObject({ status: 'cancelled' });
      const { events } = await handle.fetchHistory();
      const type = proto.api.enums.v1.EventType;
      const activity = new Map(events!.filter((e) => e.eventType === type.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        .map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType!.name!]));
      const attempts = events!.filter((e) => e.eventType === type.EVENT_TYPE_ACTIVITY_TASK_STARTED)
        .map((e) => e.activityTaskStartedEventAttributes!.attempt);
      expect(attempts.length).toBeGreaterThan(0);
      expect(attempts.every((a) => a === 1)).toBe(true);
      const completed = events!.filter((e) => e.eventType === type.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
        .map((e) => activity.get(String(e.activityTaskCompletedEventAttributes!.scheduledEventId)));
      expect(completed).toContain('recordRunEvents');
      const markers = events!.filter((e) => e.eventType === type.EVENT_TYPE_MARKER_RECORDED).map((e) => e.markerRecordedEventAttributes!);
      expect(markers.length).toBeGreaterThan(0);
      expect(markers.filter((m) => m.failure)).toEqual([]);
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
  }, 60_000);

  it('terminates a run that does not end within the bound (no worker to run its cancellation), then removes its rows', async () => {
    const user = await signup(sys.api);
    const device = await addDevice(sys.api, user.token);
    const workflowId = await addWorkflow(sys.api, user.token, linear([{ type: 'demo.echo' }]));
    await sys.stopWorker();
    try {
      const task = (await sys.api.post('/tasks', { workflow_id: workflowId, device_id: device.id }, user.token)).body.data.task;
      const started = Date.now();
      const res = await sys.api.post('/users/account/delete', { password: PASSWORD }, user.token);
      expect(res.status).toBe(200);
      expect(res.body.data).toMatchObject({ runs_cancelled: 0, runs_terminated: 1 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(RUNS_END_MS - 100);
      expect((await sys.temporal.workflow.getHandle(task.temporal.workflow_id).describe()).status.name).toBe('TERMINATED');
      const db = await dbOf(sys.orm);
      const [row] = await db.all<{ n: number }>(sql`select count(*)::int as n from tasks where id = ${task.id}`);
      expect(row.n).toBe(0);
    } finally {
      await sys.startWorker();
    }
  }, 60_000);

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

describe('device credentials across nodes', () => {
  it('rotating a device token closes its connection on the other node (4401); one made with the new token stays', async () => {
    const user = await signup(sys.api);
    const device = await addDevice(sys.api, user.token);
    const dev = await connectTestDevice(otherNodeWs(), device.deviceToken);
    try {
      const rotated = await sys.api.post(`/users/devices/${device.id}/token`, {}, user.token);
      expect(rotated.status).toBe(200);
      const closed = await eventually(async () => dev.events.find((e) => e.type === 'disconnected'), 10_000, 'the old connection closed');
      expect(closed).toEqual({ type: 'disconnected', code: 4401, reason: 'device token rotated' });
      const fresh = await connectTestDevice(otherNodeWs(), rotated.body.data.device_token);
      try {
        // Long enough for any notice about the rotation to have reached node 1 again.
        await new Promise((r) => setTimeout(r, 500));
        expect(fresh.events.filter((e) => e.type === 'disconnected')).toEqual([]);
      } finally {
        await fresh.client.stop();
      }
    } finally {
      await dev.client.stop();
    }
  }, 30_000);
});
