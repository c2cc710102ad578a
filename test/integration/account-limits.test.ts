// One account cannot hold more than its limits, however many requests it sends at once, and
// what it schedules cannot outlive the device or workflow it runs on. Expectations come from the
// configured limits and from Temporal itself (the schedules it still has), not from our tables.
import { createECDH, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ScheduleNotFoundError } from '@temporalio/client';
import webpush from 'web-push';
import { sweepOrphanSchedules } from '../../src/domain/schedules.ts';
import { addDevice, addWorkflow, linear, signup, type Reply } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

const MAX_DEVICES = 2;
const MAX_WORKFLOWS = 3;
const MAX_SCHEDULES = 2;
const MAX_RUNS = 3;
const MAX_WEBHOOKS = 2;
const MAX_PUSH_SUBSCRIPTIONS = 3;
const MAX_FCM_TOKENS = 2;

let sys: System;
let credentialsDir: string;

beforeAll(async () => {
  // FCM and Web Push are on, so their registration routes answer (nothing is sent to either here).
  credentialsDir = mkdtempSync(join(tmpdir(), 'jarvis-fcm-'));
  const credentials = join(credentialsDir, 'service-account.json');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(credentials, JSON.stringify({
    type: 'service_account', project_id: 'limits-test', client_email: 'limits@example.com',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
  }));
  const vapid = webpush.generateVAPIDKeys();
  sys = await startSystem({
    env: {
      ACCOUNT_MAX_DEVICES: String(MAX_DEVICES),
      ACCOUNT_MAX_WORKFLOWS: String(MAX_WORKFLOWS),
      ACCOUNT_MAX_SCHEDULES: String(MAX_SCHEDULES),
      ACCOUNT_MAX_UNFINISHED_RUNS: String(MAX_RUNS),
      ACCOUNT_MAX_WEBHOOKS: String(MAX_WEBHOOKS),
      ACCOUNT_MAX_PUSH_SUBSCRIPTIONS: String(MAX_PUSH_SUBSCRIPTIONS),
      ACCOUNT_MAX_FCM_TOKENS: String(MAX_FCM_TOKENS),
      VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey,
      FCM_CREDENTIALS_FILE: credentials,
      RATE_LIMIT_AUTH_PER_MIN: '1000',
    },
  });
});

afterAll(async () => {
  await sys?.stop();
  if (credentialsDir) rmSync(credentialsDir, { recursive: true, force: true });
});

const device = (token: string) => sys.api.post('/users/devices', { device_id: `pc-${randomUUID().slice(0, 8)}`, device_name: 'PC' }, token);
const workflow = (token: string) => sys.api.post('/workflows', { name: 'w', definition: linear([{ type: 'demo.echo' }]) }, token);

/** A browser's PushSubscription JSON for a new endpoint (or for `endpoint`, with new keys). */
function browser(endpoint = `https://push.example.com/${randomUUID()}`) {
  const key = createECDH('prime256v1');
  key.generateKeys();
  return { endpoint, expirationTime: null, keys: { p256dh: key.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') } };
}
const subscribe = (token: string, body = browser()) => sys.api.post('/push/subscriptions', body, token);
const fcmToken = (token: string, t = `fcm-${randomUUID()}`) => sys.api.post('/push/fcm-tokens', { token: t, platform: 'android' }, token);

/** How many rows of `table` the user holds, read from PostgreSQL. */
async function held(table: 'webhook_endpoints' | 'push_subscriptions' | 'fcm_tokens', userId: string): Promise<number> {
  const [row] = await sys.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from ${table} where user_id = ?`, [userId]);
  return Number(row.n);
}

/** Temporal's own answer: does this schedule exist there? */
async function inTemporal(scheduleId: string): Promise<boolean> {
  try {
    await sys.temporal.schedule.getHandle(scheduleId).describe();
    return true;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}

describe('per-account limits', () => {
  it('devices: the limit holds for requests sent all at once; other accounts are untouched', async () => {
    const { token } = await signup(sys.api);
    const answers = await Promise.all(Array.from({ length: MAX_DEVICES * 3 }, () => device(token)));
    expect(answers.filter((r) => r.status === 201)).toHaveLength(MAX_DEVICES);
    for (const r of answers.filter((a) => a.status !== 201)) {
      expect([r.status, r.body.code, r.body.data]).toEqual([403, 1003, { limit: MAX_DEVICES, what: 'devices' }]);
    }
    expect((await sys.api.get('/users/devices', token)).body.data.total).toBe(MAX_DEVICES);
    const other = await signup(sys.api);
    expect((await device(other.token)).status).toBe(201);
    // Unbinding one frees its place.
    const id = answers.find((r) => r.status === 201)!.body.data.device.id as string;
    expect((await sys.api.del(`/users/devices/${id}`, token)).status).toBe(200);
    expect((await device(token)).status).toBe(201);
  });

  it('workflows: created and imported count alike, all at once', async () => {
    const { token } = await signup(sys.api);
    const doc = { format: 'jarvis.workflow', format_version: 1, workflow: { name: 'imported', definition: linear([{ type: 'demo.echo' }]) } };
    const answers = await Promise.all([
      ...Array.from({ length: MAX_WORKFLOWS * 2 }, () => workflow(token)),
      ...Array.from({ length: 2 }, () => sys.api.post('/workflows/import', doc, token)),
    ]);
    const created = answers.filter((r) => r.status === 201);
    expect(created).toHaveLength(MAX_WORKFLOWS);
    for (const r of answers.filter((a) => a.status !== 201)) {
      expect([r.status, r.body.code, r.body.data]).toEqual([403, 1003, { limit: MAX_WORKFLOWS, what: 'workflows' }]);
    }
    expect((await sys.api.get('/workflows', token)).body.data.total).toBe(MAX_WORKFLOWS);
  });

  it('unfinished runs: past the limit a submission is 429 code 4029; a finished run frees a place', async () => {
    const { token } = await signup(sys.api);
    const pc = await addDevice(sys.api, token); // never connects: its runs stay pending
    const wf = await addWorkflow(sys.api, token, linear([{ type: 'demo.echo' }]));
    const submit = () => sys.api.post('/tasks', { workflow_id: wf, device_id: pc.id }, token);
    const answers = await Promise.all(Array.from({ length: MAX_RUNS * 2 }, submit));
    const accepted = answers.filter((r) => r.status === 201);
    expect(accepted).toHaveLength(MAX_RUNS);
    for (const r of answers.filter((a) => a.status !== 201)) {
      expect([r.status, r.body.code, r.headers.get('retry-after') !== null]).toEqual([429, 4029, true]);
    }
    // Each accepted run is its own Temporal workflow, with its account as fairness key.
    const taskId = accepted[0].body.data.task.id as string;
    const described = await sys.temporal.workflow.getHandle(`task-${taskId}`).describe();
    expect(described.raw.workflowExecutionInfo?.priority?.fairnessKey).toBe((await sys.api.get('/auth/me', token)).body.data.user.id);
    // Cancel one: once it has ended, one more fits, and only one.
    expect((await sys.api.post(`/tasks/${taskId}/cancel`, {}, token)).status).toBe(202);
    let next = await submit();
    for (let i = 0; i < 100 && next.status === 429; i++) {
      await new Promise((r) => setTimeout(r, 100));
      next = await submit();
    }
    expect(next.status).toBe(201);
    expect((await submit()).status).toBe(429);
  });
});

describe('notification targets: each one is a delivery per notification, so an account holds a bounded number', () => {
  const refused = (what: string, limit: number) => [403, 1003, { limit, what }];
  const answer = (r: Reply) => [r.status, r.body.code, r.body.data];

  it('webhooks: the limit holds for requests sent all at once; deleting one frees a place', async () => {
    const u = await signup(sys.api);
    const create = () => sys.api.post('/webhooks', { url: `https://example.com/hooks/${randomUUID()}` }, u.token);
    const answers = await Promise.all(Array.from({ length: MAX_WEBHOOKS * 3 }, create));
    expect(answers.filter((r) => r.status === 201)).toHaveLength(MAX_WEBHOOKS);
    for (const r of answers.filter((a) => a.status !== 201)) expect(answer(r)).toEqual(refused('webhooks', MAX_WEBHOOKS));
    expect(await held('webhook_endpoints', u.userId)).toBe(MAX_WEBHOOKS);
    expect((await sys.api.get('/webhooks', u.token)).body.data.total).toBe(MAX_WEBHOOKS);
    // Disabled, a webhook still holds its place: it can be enabled again.
    const [first] = answers.filter((r) => r.status === 201).map((r) => r.body.data.webhook.id as string);
    expect((await sys.api.put(`/webhooks/${first}`, { enabled: false }, u.token)).status).toBe(200);
    expect(answer(await create())).toEqual(refused('webhooks', MAX_WEBHOOKS));
    expect((await sys.api.del(`/webhooks/${first}`, u.token)).status).toBe(200);
    expect((await create()).status).toBe(201);
    expect((await create()).status).toBe(403);
    // Another account's limit is its own.
    const other = await signup(sys.api);
    expect((await sys.api.post('/webhooks', { url: 'https://example.com/hooks/other' }, other.token)).status).toBe(201);
  });

  it('Web Push: the limit holds at once; a browser saved again takes no second place, even at the limit', async () => {
    const u = await signup(sys.api);
    const bodies = Array.from({ length: MAX_PUSH_SUBSCRIPTIONS * 3 }, () => browser());
    const answers = await Promise.all(bodies.map((b) => subscribe(u.token, b)));
    const saved = bodies.filter((_, i) => answers[i].status === 201);
    expect(saved).toHaveLength(MAX_PUSH_SUBSCRIPTIONS);
    for (const r of answers.filter((a) => a.status !== 201)) expect(answer(r)).toEqual(refused('push_subscriptions', MAX_PUSH_SUBSCRIPTIONS));
    // At the limit: each saved browser again, all at once, some with new keys: all updated in place.
    const again = await Promise.all([...saved.map((b) => subscribe(u.token, b)), ...saved.map((b) => subscribe(u.token, browser(b.endpoint)))]);
    expect(again.map((r) => r.status)).toEqual(Array(saved.length * 2).fill(200));
    expect(await held('push_subscriptions', u.userId)).toBe(MAX_PUSH_SUBSCRIPTIONS);
    // A browser another account holds, saved here, is a new one of ours: refused at the limit.
    const other = await signup(sys.api);
    const theirs = browser();
    expect((await subscribe(other.token, theirs)).status).toBe(201);
    expect(answer(await subscribe(u.token, theirs))).toEqual(refused('push_subscriptions', MAX_PUSH_SUBSCRIPTIONS));
    expect(await held('push_subscriptions', other.userId)).toBe(1);
    // Below the limit, one new browser saved several times at once takes one place, not several.
    const id = again[0].body.data.subscription.id as string;
    expect((await sys.api.del(`/push/subscriptions/${id}`, u.token)).status).toBe(200);
    const fresh = browser();
    const burst = await Promise.all(Array.from({ length: 4 }, () => subscribe(u.token, fresh)));
    expect(burst.map((r) => r.status).sort()).toEqual([200, 200, 200, 201]);
    expect(await held('push_subscriptions', u.userId)).toBe(MAX_PUSH_SUBSCRIPTIONS);
  });

  it('FCM: the limit holds at once; a token saved again takes no second place, even at the limit', async () => {
    const u = await signup(sys.api);
    const tokens = Array.from({ length: MAX_FCM_TOKENS * 3 }, () => `fcm-${randomUUID()}`);
    const answers = await Promise.all(tokens.map((t) => fcmToken(u.token, t)));
    const saved = tokens.filter((_, i) => answers[i].status === 201);
    expect(saved).toHaveLength(MAX_FCM_TOKENS);
    for (const r of answers.filter((a) => a.status !== 201)) expect(answer(r)).toEqual(refused('fcm_tokens', MAX_FCM_TOKENS));
    const again = await Promise.all(saved.map((t) => fcmToken(u.token, t)));
    expect(again.map((r) => r.status)).toEqual(Array(saved.length).fill(200));
    expect(await held('fcm_tokens', u.userId)).toBe(MAX_FCM_TOKENS);
    expect(answer(await fcmToken(u.token))).toEqual(refused('fcm_tokens', MAX_FCM_TOKENS));
    // Signed out of one install: its place is free for another.
    expect((await sys.api.del(`/push/fcm-tokens/${again[0].body.data.fcm_token.id}`, u.token)).status).toBe(200);
    expect((await fcmToken(u.token)).status).toBe(201);
    expect(await held('fcm_tokens', u.userId)).toBe(MAX_FCM_TOKENS);
  });
});

describe('schedules cannot outlive what they run', () => {
  it('a schedule past the limit is 403; every spec fires at most once a minute', async () => {
    const { token } = await signup(sys.api);
    const pc = await addDevice(sys.api, token);
    const wf = await addWorkflow(sys.api, token, linear([{ type: 'demo.echo' }]));
    const body = { workflow_id: wf, device_id: pc.id, interval_seconds: 3600, paused: true };
    for (let i = 0; i < MAX_SCHEDULES; i++) expect((await sys.api.post('/schedules', body, token)).status).toBe(201);
    const over = await sys.api.post('/schedules', body, token);
    expect([over.status, over.body.code, over.body.data]).toEqual([403, 1003, { limit: MAX_SCHEDULES, what: 'schedules' }]);
    for (const cron of ['@every 1s', '* * * * * *', '* * * * * * *']) {
      const r = await sys.api.post('/schedules', { workflow_id: wf, device_id: pc.id, cron }, token);
      expect([cron, r.status, r.body.data.errors[0].path]).toEqual([cron, 400, 'cron']);
    }
    expect((await sys.api.post('/schedules', { ...body, interval_seconds: 59 }, token)).status).toBe(400);
  });

  it('deleting the device or the workflow deletes their schedules in Temporal in the same request', async () => {
    const { token } = await signup(sys.api);
    const pcs = [await addDevice(sys.api, token), await addDevice(sys.api, token)];
    const wfs = [await addWorkflow(sys.api, token, linear([{ type: 'demo.echo' }])), await addWorkflow(sys.api, token, linear([{ type: 'demo.echo' }]))];
    const make = async (wf: string, pc: string) => {
      const r = await sys.api.post('/schedules', { workflow_id: wf, device_id: pc, interval_seconds: 60 }, token);
      expect(r.status).toBe(201);
      return r.body.data.schedule.temporal_schedule_id as string;
    };
    const onDevice = await make(wfs[0], pcs[0].id);
    const ofWorkflow = await make(wfs[1], pcs[1].id);
    expect([await inTemporal(onDevice), await inTemporal(ofWorkflow)]).toEqual([true, true]);

    expect((await sys.api.del(`/users/devices/${pcs[0].id}`, token)).status).toBe(200);
    expect(await inTemporal(onDevice)).toBe(false);
    expect(await inTemporal(ofWorkflow)).toBe(true);

    expect((await sys.api.del(`/workflows/${wfs[1]}`, token)).status).toBe(200);
    expect(await inTemporal(ofWorkflow)).toBe(false);
    // And the user's list, read back, holds neither.
    expect((await sys.api.get('/schedules', token)).body.data.total).toBe(0);
  });

  it('the sweep deletes a Temporal schedule of ours that has no row, and leaves the others', async () => {
    const { token } = await signup(sys.api);
    const pc = await addDevice(sys.api, token);
    const wf = await addWorkflow(sys.api, token, linear([{ type: 'demo.echo' }]));
    const kept = (await sys.api.post('/schedules', { workflow_id: wf, device_id: pc.id, interval_seconds: 3600, paused: true }, token))
      .body.data.schedule.temporal_schedule_id as string;
    // A schedule as a crash between the two writes would leave it: in Temporal, with no row.
    const orphan = `schedule-${randomUUID()}`;
    await sys.temporal.schedule.create({
      scheduleId: orphan,
      spec: { intervals: [{ every: '1h' }] },
      action: { type: 'startWorkflow', workflowType: 'scheduledRunWorkflow', taskQueue: sys.config.TASK_QUEUE, args: [{ scheduleId: orphan.slice(9), taskQueue: sys.config.TASK_QUEUE }] },
      state: { paused: true },
    });
    expect(await inTemporal(orphan)).toBe(true);
    // Schedules are listed through visibility, which follows a moment behind.
    let deleted = 0;
    for (let i = 0; i < 50 && (await inTemporal(orphan)); i++) {
      deleted += await sweepOrphanSchedules(sys.orm, sys.temporal);
      if (await inTemporal(orphan)) await new Promise((r) => setTimeout(r, 200));
    }
    expect(deleted).toBeGreaterThanOrEqual(1);
    expect(await inTemporal(orphan)).toBe(false);
    expect(await inTemporal(kept)).toBe(true);
  });
});
