// Notifications (issue 17, the list): written by the run mirror in the transaction of the events
// that cause them, once per event however batches are retried or reordered; listed, counted and
// marked read over REST under the caller's scope; announced on the user feed with their stored id.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MonitorClient } from '../../src/clients/monitor-client.ts';
import { Notification, NotificationDelivery, Task, WebhookEndpoint, WorkflowVersion } from '../../src/db/entities.ts';
import { ApplicationFailure } from '@temporalio/common';
import { createDeliveryActivities } from '../../activities/notification-delivery.ts';
import { applyRunEvents } from '../../src/domain/run-mirror.ts';
import { APPROVAL_EXPIRING_TITLE } from '../../src/domain/notifications.ts';
import { insertApprovalReminders } from '../../src/db/notifications.ts';
import type { RunEvent } from '../../workflows/api.ts';
import { addDevice, addWorkflow, eventually, linear, signup, type Reply } from '../helpers/api.ts';
import { connectTestDevice, type TestDevice } from '../helpers/devices.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;

interface TestUser {
  token: string;
  userId: string;
  deviceId: string;
  deviceToken: string;
  workflowId: string;
  versionId: string;
}

const WORKFLOW_NAME = 'Nightly backup';

async function newUser(): Promise<TestUser> {
  const u = await signup(sys.api);
  const device = await addDevice(sys.api, u.token);
  const workflowId = await addWorkflow(sys.api, u.token, linear([{ type: 'demo.echo' }]), WORKFLOW_NAME);
  const [version] = await sys.orm.em.fork().find(WorkflowVersion, { workflowId });
  return { token: u.token, userId: u.userId, deviceId: device.id, deviceToken: device.deviceToken, workflowId, versionId: version.id };
}

/** A task row with no run behind it: only the batches under test write its events. */
async function bareTask(u: TestUser, idempotencyKey: string | null = null): Promise<string> {
  const em = sys.orm.em.fork();
  const id = randomUUID();
  em.create(Task, {
    id, userId: u.userId, workflowId: u.workflowId, workflowVersionId: u.versionId, deviceId: u.deviceId, status: 'pending',
    statusReason: 'queued', priority: 'medium', parameters: {}, idempotencyKey, temporalWorkflowId: `task-${id}`, progress: 0,
    lastSeq: 0, result: null,
  });
  await em.flush();
  return id;
}

const T0 = Date.parse('2026-11-23T10:00:00Z');
const ev = (seq: number, kind: RunEvent['kind'], data: Record<string, unknown> = {}): RunEvent => ({ seq, kind, at: T0 + seq * 1000, data });

/** A run that waits for its offline device, asks for an approval, then fails. */
const failingRun = (): RunEvent[] => [
  ev(1, 'run.pending', { reason: 'queued' }),
  ev(2, 'run.pending', { reason: 'device_offline' }),
  ev(3, 'run.started'),
  ev(4, 'run.waiting_approval', { step_id: 'ask', name: null, message: 'Delete old backups?', timeout_ms: 60_000 }),
  ev(5, 'run.approval_decided', { step_id: 'ask', approved: true, by: 'u', client: null, comment: null, timed_out: false }),
  ev(6, 'run.failed', { error: { code: 'DISK_FULL', message: 'no space left on D:' } }),
];

async function stored(taskId: string) {
  return sys.orm.em.fork().find(Notification, { taskId }, { orderBy: { seq: 'asc' } });
}

function expectInvalid(res: Reply, path: string) {
  expect([res.status, res.body.code]).toEqual([400, 1001]);
  expect((res.body.data.errors as { path: string }[]).map((e) => e.path)).toContain(path);
}

const REMINDER_LEAD_MS = 1500;

beforeAll(async () => {
  sys = await startSystem({ env: { APPROVAL_REMINDER_LEAD_MS: String(REMINDER_LEAD_MS), APPROVAL_REMINDER_SWEEP_MS: '200', RATE_LIMIT_AUTH_PER_MIN: '1000' } });
});

afterAll(async () => {
  await sys?.stop();
});

describe('written by the run mirror', () => {
  it('one per event that calls for one, with the task, workflow and device named', async () => {
    const u = await newUser();
    const taskId = await bareTask(u);
    await applyRunEvents(sys.orm, taskId, failingRun());
    const rows = await stored(taskId);
    expect(rows.map((n) => [n.seq, n.kind])).toEqual([[2, 'device.offline'], [4, 'approval.requested'], [6, 'run.failed']]);
    expect(rows.map((n) => n.title)).toEqual([
      `${WORKFLOW_NAME}: Device offline`, `${WORKFLOW_NAME}: Approval needed`, `${WORKFLOW_NAME}: Run failed: DISK_FULL`,
    ]);
    expect(rows[1].body).toBe('Delete old backups?');
    expect(rows[2].body).toBe('no space left on D:');
    for (const n of rows) {
      expect(n).toMatchObject({ userId: u.userId, workflowId: u.workflowId, workflowName: WORKFLOW_NAME, deviceId: u.deviceId, deviceName: 'Test PC', readAt: null });
    }
  });

  it('exactly once when batches are retried and land out of order', async () => {
    const u = await newUser();
    const taskId = await bareTask(u);
    const events = failingRun();
    // The later batch first (it waits past the gap), then the earlier one twice, then all again.
    await applyRunEvents(sys.orm, taskId, events.slice(3));
    expect(await stored(taskId)).toHaveLength(0); // nothing folded yet, so nothing written
    await applyRunEvents(sys.orm, taskId, events.slice(0, 3));
    await applyRunEvents(sys.orm, taskId, events.slice(0, 3));
    await applyRunEvents(sys.orm, taskId, events);
    expect((await stored(taskId)).map((n) => n.seq)).toEqual([2, 4, 6]);
  });

  it('a scheduled run that fails is schedule.run_failed', async () => {
    const u = await newUser();
    const taskId = await bareTask(u, `schedule:schedule-${randomUUID()}-run-2026-11-23T10:00:00Z`);
    await applyRunEvents(sys.orm, taskId, [ev(1, 'run.started'), ev(2, 'run.failed', { error: { code: 'STEP_TIMEOUT', message: 'x' } })]);
    expect((await stored(taskId)).map((n) => n.kind)).toEqual(['schedule.run_failed']);
  });
});

describe('approval reminders (approval.expiring)', () => {
  const waiting = (seq: number, at: number, timeoutMs: number) =>
    ({ seq, kind: 'run.waiting_approval' as const, at, data: { step_id: 'ask', name: null, message: 'Ship it?', timeout_ms: timeoutMs } });

  it('one per approval still waiting once its timeout is near; none for a decided one or one far off', async () => {
    const u = await newUser();
    const now = Date.now();
    // A reminder is due `lead` before the timeout, or half-way from the request (as stored) to
    // the timeout when that is later: here half-way, 2 s from now.
    const lead = 10_000;
    const due = await bareTask(u);
    await applyRunEvents(sys.orm, due, [ev(1, 'run.started'), waiting(2, now, 4000)]);
    // Decided: its reminder would be due, but the run no longer waits.
    const decided = await bareTask(u);
    await applyRunEvents(sys.orm, decided, [ev(1, 'run.started'), waiting(2, now, 4000),
      { seq: 3, kind: 'run.approval_decided', at: now + 1, data: { step_id: 'ask', approved: true, by: u.userId, timed_out: false } }]);
    // Far off: times out in a minute.
    const later = await bareTask(u);
    await applyRunEvents(sys.orm, later, [ev(1, 'run.started'), waiting(2, now, 60_000)]);
    const requested = (await stored(due)).find((n) => n.kind === 'approval.requested')!;
    expect(requested.expiresAt?.getTime()).toBe(now + 4000);
    await insertApprovalReminders(sys.orm.em.fork(), lead, APPROVAL_EXPIRING_TITLE);
    expect((await stored(due)).map((n) => n.kind)).toEqual(['approval.requested']); // not yet
    await new Promise((r) => setTimeout(r, 2300 - (Date.now() - now)));
    // Swept twice here (and by the node's own sweep meanwhile): one reminder.
    await insertApprovalReminders(sys.orm.em.fork(), lead, APPROVAL_EXPIRING_TITLE);
    await insertApprovalReminders(sys.orm.em.fork(), lead, APPROVAL_EXPIRING_TITLE);
    const reminders = (await stored(due)).filter((n) => n.kind === 'approval.expiring');
    expect(reminders.map((n) => [n.seq, n.title, n.body, n.expiresAt?.getTime()]))
      .toEqual([[2, `${WORKFLOW_NAME}: ${APPROVAL_EXPIRING_TITLE}`, 'Ship it?', now + 4000]]);
    expect((await stored(decided)).map((n) => n.kind)).toEqual(['approval.requested']);
    expect((await stored(later)).map((n) => n.kind)).toEqual(['approval.requested']);
  });

  it('a real run\'s approval is reminded on the user feed before it times out', async () => {
    const u = await newUser();
    const pc = await connectTestDevice(sys.wsUrl, u.deviceToken);
    const monitor = new MonitorClient({ url: sys.wsUrl, token: u.token });
    try {
      await monitor.start();
      const subscribed = monitor.send({ type: 'subscribe', payload: { scope: 'user' } });
      await monitor.waitFor(() => monitor.frames.some((f) => f.type === 'subscribed' && f.re === subscribed), 10_000);
      const timeoutMs = 5000;
      const workflowId = await addWorkflow(sys.api, u.token, {
        nodes: [{ id: 'start', type: 'start' }, { id: 'ask', type: 'approval', params: { message: 'Ship it?', timeoutMs, onTimeout: 'reject' } }, { id: 'end', type: 'end' }],
        edges: [{ from: 'start', to: 'ask' }, { from: 'ask', to: 'end' }],
      }, WORKFLOW_NAME);
      const res = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: u.deviceId }, u.token);
      expect(res.status).toBe(201);
      const taskId = res.body.data.task.id as string;
      const note = (kind: string) => monitor.framesOf('notification').find((f) => f.payload.task_id === taskId && f.payload.kind === kind)?.payload;
      await monitor.waitFor(() => Boolean(note('approval.requested')), 15_000, 'approval.requested');
      await monitor.waitFor(() => Boolean(note('approval.expiring')), 15_000, 'approval.expiring');
      const requested = (await stored(taskId)).find((n) => n.kind === 'approval.requested')!;
      const reminded = note('approval.expiring')!;
      // Due at the lead before the timeout (not at the request), and before the timeout itself.
      expect(reminded.at).toBeGreaterThanOrEqual(requested.expiresAt!.getTime() - REMINDER_LEAD_MS);
      expect(reminded.at).toBeLessThan(requested.expiresAt!.getTime());
      const listed = (await sys.api.get('/notifications?page_size=100', u.token)).body.data.list;
      expect(listed.find((n: { id: string }) => n.id === reminded.id)).toMatchObject({ kind: 'approval.expiring', task_id: taskId });
    } finally {
      await monitor.stop();
      await pc.client.stop();
    }
  }, 40_000);
});

describe('REST', () => {
  let u: TestUser;
  let other: TestUser;
  let ids: string[]; // newest first

  beforeAll(async () => {
    u = await newUser();
    other = await newUser();
    for (let i = 0; i < 3; i++) await applyRunEvents(sys.orm, await bareTask(u), failingRun());
    await applyRunEvents(sys.orm, await bareTask(other), failingRun());
    const rows = await sys.orm.em.fork().find(Notification, { userId: u.userId }, { orderBy: { createdAt: 'desc', id: 'desc' } });
    ids = rows.map((n) => n.id);
    expect(ids).toHaveLength(9);
  });

  it('lists mine, newest first, by cursor, with links', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: Reply = await sys.api.get(`/notifications?page_size=4${cursor ? `&cursor=${cursor}` : ''}`, u.token);
      expect(res.status).toBe(200);
      expect(res.body.data.total).toBe(9);
      seen.push(...res.body.data.list.map((n: { id: string }) => n.id));
      cursor = res.body.data.next_cursor;
    } while (cursor);
    expect(seen).toEqual(ids);
    const first = (await sys.api.get('/notifications?page_size=100', u.token)).body.data.list;
    const approval = first.find((n: { kind: string }) => n.kind === 'approval.requested');
    expect(approval.links).toEqual({
      monitor: `/monitor#task=${approval.task_id}`, task: `/api/v1/tasks/${approval.task_id}`, approval: `/api/v1/tasks/${approval.task_id}/approval`,
    });
    expect(approval).toMatchObject({ workflow_name: WORKFLOW_NAME, device_name: 'Test PC', device_id: u.deviceId, read_at: null });
  });

  it('marks by id (only mine) and all; unread count and unread=true follow', async () => {
    const count = async (t: TestUser) => (await sys.api.get('/notifications/unread-count', t.token)).body.data.unread;
    expect(await count(u)).toBe(9);
    // Another user's id is not marked, nor is one marked twice.
    const theirs = (await sys.orm.em.fork().findOneOrFail(Notification, { userId: other.userId })).id;
    let res = await sys.api.post('/notifications/read', { ids: [ids[0], ids[1], theirs] }, u.token);
    expect([res.status, res.body.data]).toEqual([200, { marked: 2 }]);
    res = await sys.api.post('/notifications/read', { ids: [ids[0]] }, u.token);
    expect(res.body.data).toEqual({ marked: 0 });
    expect(await count(u)).toBe(7);
    expect(await count(other)).toBe(3);
    const unread = (await sys.api.get('/notifications?unread=true&page_size=100', u.token)).body.data;
    expect(unread.total).toBe(7);
    expect(unread.list.map((n: { id: string }) => n.id)).toEqual(ids.slice(2));
    const read = (await sys.api.get('/notifications?unread=false&page_size=100', u.token)).body.data.list;
    expect(read.filter((n: { read_at: string | null }) => n.read_at).map((n: { id: string }) => n.id)).toEqual(ids.slice(0, 2));
    res = await sys.api.post('/notifications/read', { all: true }, u.token);
    expect(res.body.data).toEqual({ marked: 7 });
    expect(await count(u)).toBe(0);
    expect(await count(other)).toBe(3);
  });

  it('refuses bad input with the contract codes', async () => {
    expectInvalid(await sys.api.get('/notifications?unread=yes', u.token), 'unread');
    expectInvalid(await sys.api.get('/notifications?cursor=bogus', u.token), 'cursor');
    expectInvalid(await sys.api.get('/notifications?page_size=101', u.token), 'page_size');
    expectInvalid(await sys.api.get('/notifications?colour=red', u.token), '(root)');
    expectInvalid(await sys.api.post('/notifications/read', { ids: ['nope'] }, u.token), 'ids.0');
    expectInvalid(await sys.api.post('/notifications/read', { ids: [] }, u.token), 'ids');
    expectInvalid(await sys.api.post('/notifications/read', { all: false }, u.token), 'all');
    expectInvalid(await sys.api.post('/notifications/read', { ids: Array.from({ length: 101 }, () => randomUUID()) }, u.token), 'ids');
    expect((await sys.api.post('/notifications/read', {}, u.token)).status).toBe(400);
    expect((await sys.api.post('/notifications/read', { ids: [ids[0]], all: true }, u.token)).status).toBe(400);
    for (const res of [await sys.api.get('/notifications'), await sys.api.get('/notifications/unread-count'), await sys.api.post('/notifications/read', { all: true })]) {
      expect([res.status, res.body.code]).toEqual([401, 1002]);
    }
  });
});

describe('settings', () => {
  it('defaults until saved; PUT replaces them, per user', async () => {
    const u = await newUser();
    const other = await newUser();
    let res = await sys.api.get('/notifications/settings', u.token);
    expect(res.status).toBe(200);
    expect(res.body.data.settings.quiet_hours).toBeNull();
    expect(res.body.data.settings.updated_at).toBeNull();
    expect(res.body.data.settings.channels.fcm.kinds['run.failed']).toBe(true);
    const quiet = { start: '22:30', end: '06:45', timezone: 'Asia/Shanghai' };
    res = await sys.api.put('/notifications/settings', { channels: { fcm: { kinds: { 'run.completed': false } }, webhook: { enabled: false } }, quiet_hours: quiet }, u.token);
    expect(res.status).toBe(200);
    const saved = (await sys.api.get('/notifications/settings', u.token)).body.data.settings;
    expect(saved).toEqual(res.body.data.settings);
    expect(saved.quiet_hours).toEqual(quiet);
    expect(saved.channels.fcm).toMatchObject({ enabled: true, kinds: { 'run.completed': false, 'run.failed': true } });
    expect(saved.channels.webhook.enabled).toBe(false);
    expect(saved.channels.web_push.enabled).toBe(true);
    expect(Date.parse(saved.updated_at)).toBeGreaterThan(Date.now() - 60_000);
    // A replace, not a merge: what is left out is back to its default.
    res = await sys.api.put('/notifications/settings', { channels: { webhook: { enabled: false } } }, u.token);
    expect(res.body.data.settings.quiet_hours).toBeNull();
    expect(res.body.data.settings.channels.fcm.kinds['run.completed']).toBe(true);
    expect((await sys.api.get('/notifications/settings', other.token)).body.data.settings.updated_at).toBeNull();
  });

  it('refuses bad settings with the contract codes', async () => {
    const u = await newUser();
    const put = (body: unknown) => sys.api.put('/notifications/settings', body, u.token);
    expectInvalid(await put({ quiet_hours: { start: '24:00', end: '07:00', timezone: 'Europe/Berlin' } }), 'quiet_hours.start');
    expectInvalid(await put({ quiet_hours: { start: '22:00', end: '7:00', timezone: 'Europe/Berlin' } }), 'quiet_hours.end');
    expectInvalid(await put({ quiet_hours: { start: '22:00', end: '22:00', timezone: 'Europe/Berlin' } }), 'quiet_hours.end');
    expectInvalid(await put({ quiet_hours: { start: '22:00', end: '07:00', timezone: 'Mars/Base' } }), 'quiet_hours.timezone');
    expectInvalid(await put({ quiet_hours: { start: '22:00', end: '07:00' } }), 'quiet_hours.timezone');
    expectInvalid(await put({ channels: { sms: { enabled: true } } }), 'channels');
    expectInvalid(await put({ channels: { fcm: { kinds: { 'run.exploded': false } } } }), 'channels.fcm.kinds');
    expectInvalid(await put({ channels: { fcm: { enabled: 'yes' } } }), 'channels.fcm.enabled');
    expectInvalid(await put({ colour: 'red' }), '(root)');
    expect((await sys.api.get('/notifications/settings', u.token)).body.data.settings.updated_at).toBeNull();
    for (const res of [await sys.api.get('/notifications/settings'), await sys.api.put('/notifications/settings', {})]) {
      expect([res.status, res.body.code]).toEqual([401, 1002]);
    }
  });
});

describe('webhook targets with the default settings (SSRF protection on)', () => {
  it('refuses loopback, private and link-local URLs when saved, and at delivery', async () => {
    const u = await newUser();
    for (const url of ['http://127.0.0.1:8080/hook', 'http://localhost/hook', 'http://[::1]/hook', 'http://169.254.169.254/latest/meta-data', 'http://192.168.1.20/hook']) {
      expectInvalid(await sys.api.post('/webhooks', { url }, u.token), 'url');
    }
    // A target that got past the check (a row written as by an older version, or a name that
    // now resolves to loopback) is refused by the delivery activity itself, and not retried. (The
    // activity is called here as its workflow calls it: this file's nodes run no dispatcher, and
    // deliveries.test.ts, whose nodes do, allows private targets.)
    let hits = 0;
    const server = createServer((_req, res) => { hits++; res.end(); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as AddressInfo).port;
      const em = sys.orm.em.fork();
      const endpointId = randomUUID();
      // Disabled, and its delivery marked started: no dispatcher of another test file takes them.
      em.create(WebhookEndpoint, { id: endpointId, userId: u.userId, url: `http://localhost:${port}/hook`, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', kinds: [], enabled: false, description: null });
      await em.flush();
      const taskId = await bareTask(u);
      await applyRunEvents(sys.orm, taskId, [ev(1, 'run.started'), ev(2, 'run.completed')]);
      const [note] = await stored(taskId);
      const deliveryId = randomUUID();
      em.create(NotificationDelivery, {
        id: deliveryId, userId: u.userId, notificationId: note.id, channel: 'webhook', endpointId, subscriptionId: null, status: 'pending',
        attempts: 0, redeliveries: 0, startedAt: new Date(),
      });
      await em.flush();
      const activities = createDeliveryActivities({ orm: sys.orm, timeoutMs: 5000, allowPrivateTargets: false, vapid: null, fcm: null, perAccountInFlight: 8 });
      const err = await activities.deliverNotification({ deliveryId }).then(() => null, (e: unknown) => e as ApplicationFailure);
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect([err!.type, err!.nonRetryable]).toEqual(['TargetRefused', true]);
      const delivery = await sys.orm.em.fork().findOneOrFail(NotificationDelivery, { id: deliveryId });
      expect(delivery).toMatchObject({ status: 'failed', attempts: 1, lastStatusCode: null });
      expect(delivery.lastError).toMatch(/loopback, private or link-local/);
      expect(hits).toBe(0);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 40_000);
});

describe('the user feed', () => {
  let pc: TestDevice | undefined;
  let monitor: MonitorClient | undefined;
  afterAll(async () => {
    await monitor?.stop();
    await pc?.client.stop();
  });

  it('announces a real run\'s end with the stored notification\'s id', async () => {
    const u = await newUser();
    pc = await connectTestDevice(sys.wsUrl, u.deviceToken);
    monitor = new MonitorClient({ url: sys.wsUrl, token: u.token });
    await monitor.start();
    const subscribed = monitor.send({ type: 'subscribe', payload: { scope: 'user' } });
    await monitor.waitFor(() => monitor!.frames.some((f) => f.type === 'subscribed' && f.re === subscribed), 10_000);
    const res = await sys.api.post('/tasks', { workflow_id: u.workflowId, device_id: u.deviceId }, u.token);
    expect(res.status).toBe(201);
    const taskId = res.body.data.task.id as string;
    await monitor.waitFor(() => monitor!.framesOf('notification').some((f) => f.payload.task_id === taskId), 30_000, 'notification frame');
    const frame = monitor.framesOf('notification').find((f) => f.payload.task_id === taskId)!.payload;
    const listed = await eventually(async () => (await sys.api.get('/notifications', u.token)).body.data.list.find((n: { task_id: string }) => n.task_id === taskId));
    expect(listed.kind).toBe('run.completed');
    expect(frame).toEqual({ id: listed.id, task_id: taskId, kind: 'run.completed', title: listed.title, body: null, at: Date.parse(listed.created_at) });
  });
});
