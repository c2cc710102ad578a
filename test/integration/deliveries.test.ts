// Deliveries (issue 17), every channel through the dispatcher and one Temporal workflow per
// delivery, to receivers on 127.0.0.1 (hence WEBHOOK_ALLOW_PRIVATE_TARGETS; notifications.test.ts
// checks the refusal with the default setting):
// - webhooks, each request verified by the standardwebhooks library; retries with backoff until
//   a receiver recovers, failed deliveries in the log once their retries are spent, redelivery
//   with the same webhook-id;
// - Web Push to a push service that checks the VAPID signature and decrypts each payload with
//   the browser's keys (http_ece, the RFC 8291 reference); a 410 forgets the subscription;
//   quiet hours hold pushes for one digest;
// - FCM HTTP v1 to a stand-in for Google: its token endpoint checks the service account's signed
//   JWT and its send endpoint the access token; UNREGISTERED forgets the token;
// - kill -9 of the worker (the production entry in a child process) with webhooks in flight and
//   pending: none lost, each endpoint gets each notification under one webhook-id.
// The receivers are scripts/lib/notification-receivers.ts (the bench's F7 uses them too).
// One file, one system: test files share the database, and a dispatcher claims every user's
// notifications, so the deliveries of one file could run with another file's settings.
import { generateKeyPairSync, randomUUID, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import webpush from 'web-push';
import { Webhook } from 'standardwebhooks';
import { FcmToken, Notification, NotificationDelivery, PushSubscription, Task, WorkflowVersion } from '../../src/db/entities.ts';
import { deliveryWorkflowId } from '../../src/domain/notification-dispatch.ts';
import { applyRunEvents } from '../../src/domain/run-mirror.ts';
import { PushService, WebhookReceiver } from '../../scripts/lib/notification-receivers.ts';
import type { RunEvent } from '../../workflows/api.ts';
import { addDevice, addWorkflow, eventually, linear, signup, type Reply } from '../helpers/api.ts';
import { recordHistory } from '../helpers/histories.ts';
import { startSystem, type System } from '../helpers/system.ts';
import { startWorkerChild } from '../helpers/worker-child.ts';

const MAX_ATTEMPTS = 3;
const vapid = { ...webpush.generateVAPIDKeys(), subject: 'mailto:ops@example.com' };
let service: PushService;
let google: FakeFcm;
let credentialsDir: string;

let sys: System;
let systemEnv: Record<string, string>;
let receiver: WebhookReceiver;


interface TestUser { token: string; userId: string; deviceId: string; workflowId: string; versionId: string }

async function newUser(): Promise<TestUser> {
  const u = await signup(sys.api);
  const device = await addDevice(sys.api, u.token);
  const workflowId = await addWorkflow(sys.api, u.token, linear([{ type: 'demo.echo' }]), 'Nightly backup');
  const [version] = await sys.orm.em.fork().find(WorkflowVersion, { workflowId });
  return { token: u.token, userId: u.userId, deviceId: device.id, workflowId, versionId: version.id };
}

/**
 * A run's end written through the run mirror (no run behind it): one notification of `kind`'s
 * event; a failure carries `code`.
 */
async function runEnds(u: TestUser, kind: 'run.completed' | 'run.failed', code = 'DISK_FULL'): Promise<string> {
  const em = sys.orm.em.fork();
  const id = randomUUID();
  em.create(Task, {
    id, userId: u.userId, workflowId: u.workflowId, workflowVersionId: u.versionId, deviceId: u.deviceId, status: 'pending',
    statusReason: 'queued', priority: 'medium', parameters: {}, idempotencyKey: null, temporalWorkflowId: `task-${id}`, progress: 0,
    lastSeq: 0, result: null,
  });
  await em.flush();
  const at = Date.now();
  const events: RunEvent[] = [
    { seq: 1, kind: 'run.started', at, data: {} },
    { seq: 2, kind, at: at + 1, data: kind === 'run.failed' ? { error: { code, message: 'no space' } } : {} },
  ];
  await applyRunEvents(sys.orm, id, events);
  return id;
}

/** A failed run's end (see runEnds). */
const runFails = (u: TestUser, code = 'DISK_FULL') => runEnds(u, 'run.failed', code);

/** Waits until the dispatcher has decided the deliveries of the task's notifications. */
async function dispatched(taskId: string): Promise<void> {
  await eventually(async () => {
    const rows = await sys.orm.em.fork().find(Notification, { taskId });
    return rows.length > 0 && rows.every((n) => n.dispatchedAt);
  }, 10_000, 'dispatched');
}

async function addHook(u: TestUser, path: string, body: Record<string, unknown> = {}) {
  const res = await sys.api.post('/webhooks', { url: `${receiver.url}${path}`, ...body }, u.token);
  expect(res.status).toBe(201);
  receiver.secrets.set(path, res.body.data.secret);
  return res.body.data.webhook.id as string;
}

const deliveries = async (u: TestUser, hookId: string, query = '') =>
  (await sys.api.get(`/webhooks/${hookId}/deliveries?page_size=100${query}`, u.token)).body.data.list as Record<string, any>[];

beforeAll(async () => {
  receiver = new WebhookReceiver();
  await receiver.start();
  service = new PushService(vapid.publicKey);
  await service.start();
  google = new FakeFcm();
  await google.start();
  credentialsDir = mkdtempSync(join(tmpdir(), 'jarvis-fcm-'));
  const credentials = join(credentialsDir, 'service-account.json');
  writeFileSync(credentials, JSON.stringify({
    type: 'service_account', project_id: FakeFcm.PROJECT, client_email: FakeFcm.ACCOUNT, private_key: google.privateKey,
    token_uri: 'https://oauth2.googleapis.com/token',
  }));
  systemEnv = {
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', NOTIFY_DISPATCH_MS: '100', RATE_LIMIT_AUTH_PER_MIN: '1000',
      DELIVERY_MAX_ATTEMPTS: String(MAX_ATTEMPTS), DELIVERY_RETRY_INITIAL_MS: '200', DELIVERY_RETRY_MAX_MS: '400',
      VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey, VAPID_SUBJECT: vapid.subject,
      // The key file names Google's token URI; the setting overrides it, as for an emulator.
      FCM_CREDENTIALS_FILE: credentials, FCM_ENDPOINT: google.url, FCM_TOKEN_URI: `${google.url}/token`,
  };
  sys = await startSystem({ env: systemEnv });
});

afterAll(async () => {
  await sys?.stop();
  await receiver?.stop();
  await service?.stop();
  await google?.stop();
  if (credentialsDir) rmSync(credentialsDir, { recursive: true, force: true });
});

describe('webhooks', () => {
  it('deliver each notification of a listened kind once, signed per Standard Webhooks', async () => {
    const u = await newUser();
    const all = await addHook(u, '/all');
    const failures = await addHook(u, '/failures', { kinds: ['run.failed'] });
    const taskId = await runEnds(u, 'run.failed');
    await runEnds(u, 'run.completed');
    await eventually(async () => (receiver.got.get('/all')?.length ?? 0) >= 2 && (receiver.got.get('/failures')?.length ?? 0) >= 1, 30_000, 'deliveries');
    const listed = (await sys.api.get('/notifications?page_size=100', u.token)).body.data.list as Record<string, any>[];
    const failed = listed.find((n) => n.kind === 'run.failed')!;
    // The receiver verified every request with its endpoint's secret.
    const got = receiver.got.get('/failures')!;
    expect(got).toHaveLength(1);
    expect(got[0].verified).toMatchObject({
      type: 'run.failed', data: { id: failed.id, task_id: taskId, title: 'Nightly backup: Run failed: DISK_FULL', body: 'no space', device_name: 'Test PC' },
    });
    expect(got[0].headers['webhook-id']).toBe(failed.id);
    expect(Math.abs(Number(got[0].headers['webhook-timestamp']) * 1000 - Date.now())).toBeLessThan(60_000);
    expect(receiver.got.get('/all')!.map((r) => r.verified?.type).sort()).toEqual(['run.completed', 'run.failed']);
    // A signature made with another secret does not verify (the receiver's check can fail).
    expect(() => new Webhook(receiver.secrets.get('/all')!).verify(got[0].body, got[0].headers as Record<string, string>)).toThrow();
    // The log says delivered, once.
    const log = await eventually(async () => {
      const l = await deliveries(u, failures);
      return l.length === 1 && l[0].status === 'succeeded' ? l : null;
    }, 10_000, 'delivery log');
    expect(log[0]).toMatchObject({ notification_id: failed.id, webhook_id: failures, attempts: 1, last_status_code: 204, last_error: null });
    expect((await deliveries(u, all)).map((d) => d.status)).toEqual(['succeeded', 'succeeded']);
    await recordHistory(deliveryWorkflowId({ notificationId: failed.id, channel: 'webhook', endpointId: failures, subscriptionId: null, fcmTokenId: null, redeliveries: 0 }), 'notification-delivered');
  }, 60_000);

  it('retry a failing receiver with backoff, mark the delivery failed once retries are spent, and redeliver it', async () => {
    const u = await newUser();
    receiver.statuses.set('/down', 503);
    const hook = await addHook(u, '/down');
    await runEnds(u, 'run.failed');
    const [failed] = await eventually(async () => {
      const l = await deliveries(u, hook, '&status=failed');
      return l.length ? l : null;
    }, 30_000, 'failed delivery');
    expect(failed).toMatchObject({ status: 'failed', attempts: MAX_ATTEMPTS, last_status_code: 503, last_error: 'HTTP 503: busy' });
    const got = receiver.got.get('/down')!;
    expect(got).toHaveLength(MAX_ATTEMPTS);
    // Every attempt is the same message: one webhook-id, each verified.
    expect(new Set(got.map((r) => r.headers['webhook-id']))).toEqual(new Set([failed.notification_id]));
    expect(got.every((r) => r.verified)).toBe(true);
    // Backoff: 200 ms before the second attempt, 400 ms before the third.
    const gaps = got.slice(1).map((r, i) => r.at - got[i].at);
    expect(gaps[0]).toBeGreaterThanOrEqual(180);
    expect(gaps[1]).toBeGreaterThanOrEqual(380);
    await recordHistory(deliveryWorkflowId({ notificationId: failed.notification_id, channel: 'webhook', endpointId: hook, subscriptionId: null, fcmTokenId: null, redeliveries: 0 }), 'notification-delivery-failed');
    // The receiver is back: a redelivery sends the same notification again.
    receiver.statuses.delete('/down');
    const res = await sys.api.post(`/webhooks/deliveries/${failed.id}/redeliver`, {}, u.token);
    expect([res.status, res.body.data.delivery.status, res.body.data.delivery.redeliveries]).toEqual([202, 'pending', 1]);
    const done = await eventually(async () => {
      const [d] = await deliveries(u, hook);
      return d.status === 'succeeded' ? d : null;
    }, 30_000, 'redelivered');
    expect(done).toMatchObject({ attempts: MAX_ATTEMPTS + 1, last_status_code: 204, redeliveries: 1 });
    expect(receiver.got.get('/down')!.at(-1)!.headers['webhook-id']).toBe(failed.notification_id);
  }, 60_000);

  it('follow the settings and the endpoint\'s switch; refuse bad input', async () => {
    const u = await newUser();
    const hook = await addHook(u, '/quiet');
    expect((await sys.api.put('/notifications/settings', { channels: { webhook: { kinds: { 'run.completed': false } } } }, u.token)).status).toBe(200);
    await dispatched(await runEnds(u, 'run.completed')); // off in the settings
    expect((await sys.api.put(`/webhooks/${hook}`, { enabled: false }, u.token)).body.data.webhook.enabled).toBe(false);
    await dispatched(await runEnds(u, 'run.failed')); // the endpoint is off
    expect((await sys.api.put(`/webhooks/${hook}`, { enabled: true }, u.token)).status).toBe(200);
    await runEnds(u, 'run.failed'); // delivered
    await eventually(async () => (receiver.got.get('/quiet')?.length ?? 0) >= 1, 30_000, 'the one delivery');
    await new Promise((r) => setTimeout(r, 500)); // a dispatch pass or more: nothing else arrives
    expect(receiver.got.get('/quiet')!.map((r) => r.verified?.type)).toEqual(['run.failed']);

    const other = await newUser();
    const invalid = (res: Reply, path: string) => {
      expect([res.status, res.body.code]).toEqual([400, 1001]);
      expect((res.body.data.errors as { path: string }[]).map((e) => e.path)).toContain(path);
    };
    invalid(await sys.api.post('/webhooks', { url: 'ftp://example.com/x' }, u.token), 'url');
    invalid(await sys.api.post('/webhooks', { url: 'not a url' }, u.token), 'url');
    invalid(await sys.api.post('/webhooks', { url: 'https://user:pw@example.com/' }, u.token), 'url');
    invalid(await sys.api.post('/webhooks', { url: 'https://example.com/', kinds: ['run.exploded'] }, u.token), 'kinds.0');
    invalid(await sys.api.post('/webhooks', { url: 'https://example.com/', secret: 'mine' }, u.token), '(root)');
    invalid(await sys.api.put(`/webhooks/${hook}`, { enabled: 'no' }, u.token), 'enabled');
    invalid(await sys.api.get(`/webhooks/${hook}/deliveries?status=lost`, u.token), 'status');
    invalid(await sys.api.get('/webhooks/nope/deliveries', u.token), 'id');
    // Another user's webhook and delivery are not found; a delivery under way is a 409.
    expect((await sys.api.put(`/webhooks/${hook}`, { enabled: false }, other.token)).status).toBe(404);
    expect((await sys.api.get(`/webhooks/${hook}/deliveries`, other.token)).status).toBe(404);
    const [delivery] = await deliveries(u, hook);
    expect((await sys.api.post(`/webhooks/deliveries/${delivery.id}/redeliver`, {}, other.token)).status).toBe(404);
    expect((await sys.api.del(`/webhooks/${hook}`, other.token)).status).toBe(404);
    const listed = (await sys.api.get('/webhooks', u.token)).body.data;
    expect(listed.list.map((w: { id: string }) => w.id)).toEqual([hook]);
    expect(JSON.stringify(listed)).not.toContain('whsec_');
    expect((await sys.api.del(`/webhooks/${hook}`, u.token)).body.data).toEqual({ deleted: true });
    expect((await sys.api.get('/webhooks', u.token)).body.data.total).toBe(0);
    for (const res of [await sys.api.get('/webhooks'), await sys.api.post('/webhooks', { url: 'https://example.com/' })]) {
      expect([res.status, res.body.code]).toEqual([401, 1002]);
    }
  }, 60_000);
});

async function subscribe(u: TestUser) {
  const browser = service.subscribe();
  const res = await sys.api.post('/push/subscriptions', { ...browser.json, expirationTime: null, user_agent: 'Test browser' }, u.token);
  expect(res.status).toBe(201);
  return { ...browser, id: res.body.data.subscription.id as string };
}

/**
 * Google's side of FCM: a token endpoint that checks the service account's JWT (RS256, our
 * scope, our audience) and a send endpoint that checks the access token it issued.
 */
class FakeFcm {
  static readonly PROJECT = 'jarvis-test';
  static readonly ACCOUNT = 'pushes@jarvis-test.iam.gserviceaccount.com';
  readonly privateKey: string;
  private readonly publicKey: string;
  readonly tokensIssued: string[] = [];
  readonly messages: { path: string; auth: string; body: any }[] = [];
  /** Tokens FCM no longer knows: a send to them answers 404 UNREGISTERED. */
  readonly unregistered = new Set<string>();
  private server!: Server;
  url = '';

  constructor() {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.publicKey = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  async start() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const answer = (status: number, body: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        };
        if (req.url === '/token') {
          const assertion = new URLSearchParams(text).get('assertion') ?? '';
          const [h, p, s] = assertion.split('.');
          const claims = JSON.parse(Buffer.from(p ?? '', 'base64url').toString('utf8') || '{}');
          const signed = Boolean(s) && verify('sha256', Buffer.from(`${h}.${p}`), this.publicKey, Buffer.from(s, 'base64url'));
          if (!signed || claims.iss !== FakeFcm.ACCOUNT || claims.scope !== 'https://www.googleapis.com/auth/firebase.messaging') {
            return answer(401, { error: 'invalid_grant' });
          }
          const token = `ya29.${randomUUID()}`;
          this.tokensIssued.push(token);
          return answer(200, { access_token: token, expires_in: 3600, token_type: 'Bearer' });
        }
        const auth = String(req.headers.authorization ?? '');
        if (!this.tokensIssued.some((t) => auth === `Bearer ${t}`)) return answer(401, { error: { status: 'UNAUTHENTICATED' } });
        const body = JSON.parse(text);
        this.messages.push({ path: req.url ?? '', auth, body });
        if (this.unregistered.has(body.message?.token)) {
          return answer(404, { error: { code: 404, status: 'NOT_FOUND', details: [{ errorCode: 'UNREGISTERED' }] } });
        }
        answer(200, { name: `projects/${FakeFcm.PROJECT}/messages/${randomUUID()}` });
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop() {
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

describe('Web Push', () => {
  it('pushes a notification the browser can decrypt, with a VAPID signature of the server\'s key', async () => {
    const u = await newUser();
    expect((await sys.api.get('/push/vapid-public-key', u.token)).body.data).toEqual({ public_key: vapid.publicKey });
    const browser = await subscribe(u);
    const taskId = await runFails(u);
    await eventually(async () => service.got.get(browser.path)?.length, 30_000, 'push');
    const [push] = service.got.get(browser.path)!;
    const [stored] = (await sys.api.get('/notifications', u.token)).body.data.list;
    expect(push.payload).toEqual({
      id: stored.id, kind: 'run.failed', title: 'Nightly backup: Run failed: DISK_FULL', body: 'no space', task_id: taskId,
      links: stored.links, digest: null,
    });
    expect(push.headers['content-encoding']).toBe('aes128gcm');
    expect(push.headers.urgency).toBe('high');
    expect(Number(push.headers.ttl)).toBeGreaterThan(0);
    expect(push.jwt).toMatchObject({ aud: service.url, sub: 'mailto:ops@example.com' });
    expect(push.jwt!.exp * 1000).toBeGreaterThan(Date.now());
    const log = await eventually(async () => {
      const l = (await sys.api.get(`/notifications/${stored.id}/deliveries`, u.token)).body.data.list;
      return l[0]?.status === 'succeeded' ? l : null;
    }, 10_000, 'logged');
    expect(log).toEqual([expect.objectContaining({ channel: 'web_push', push_subscription_id: browser.id, webhook_id: null, attempts: 1, last_status_code: 201 })]);
    expect((await sys.api.get(`/notifications/${stored.id}/deliveries`, (await newUser()).token)).status).toBe(404);
  }, 60_000);

  it('forgets a subscription the push service says is gone (410), without retrying', async () => {
    const u = await newUser();
    const browser = await subscribe(u);
    service.statuses.set(browser.path, 410);
    await runFails(u);
    await eventually(async () => (await sys.orm.em.fork().count(PushSubscription, { id: browser.id })) === 0, 30_000, 'forgotten');
    expect(service.got.get(browser.path)).toHaveLength(1);
  }, 60_000);

  it('holds pushes in quiet hours and sends one digest when they end', async () => {
    const u = await newUser();
    const browser = await subscribe(u);
    // Quiet from an hour ago to an hour from now (UTC).
    const hhmm = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString().slice(11, 16);
    const quiet = { start: hhmm(-3600_000), end: hhmm(3600_000), timezone: 'UTC' };
    expect((await sys.api.put('/notifications/settings', { quiet_hours: quiet }, u.token)).status).toBe(200);
    const tasks = [await runFails(u, 'ONE'), await runFails(u, 'TWO'), await runFails(u, 'THREE')];
    const held = await eventually(async () => {
      const rows = await sys.orm.em.fork().find(NotificationDelivery, { subscriptionId: browser.id });
      return rows.length === 3 ? rows : null;
    }, 30_000, 'held deliveries');
    expect(held.every((d) => d.notBefore && d.notBefore.getTime() > Date.now())).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(service.got.get(browser.path)).toBeUndefined();
    // The quiet hours end (moved to now, rather than waiting up to a day for them).
    await sys.orm.em.fork().nativeUpdate(NotificationDelivery, { subscriptionId: browser.id }, { notBefore: new Date(Date.now() - 1000) });
    await eventually(async () => service.got.get(browser.path)?.length, 30_000, 'digest');
    await new Promise((r) => setTimeout(r, 500));
    const pushes = service.got.get(browser.path)!;
    expect(pushes).toHaveLength(1);
    const digest = pushes[0].payload;
    expect(digest.title).toBe('3 notifications during quiet hours');
    expect(digest.digest.map((d: { title: string }) => d.title)).toEqual(['THREE', 'TWO', 'ONE'].map((c) => `Nightly backup: Run failed: ${c}`));
    expect(new Set(digest.digest.map((d: { task_id: string }) => d.task_id))).toEqual(new Set(tasks));
    const rows = await sys.orm.em.fork().find(NotificationDelivery, { subscriptionId: browser.id });
    expect(rows.map((d) => d.status).sort()).toEqual(['digested', 'digested', 'succeeded']);
  }, 60_000);

  it('refuses bad subscriptions with the contract codes', async () => {
    const u = await newUser();
    const good = service.subscribe().json;
    const invalid = (res: Reply, path: string) => {
      expect([res.status, res.body.code]).toEqual([400, 1001]);
      expect((res.body.data.errors as { path: string }[]).map((e) => e.path)).toContain(path);
    };
    const post = (body: unknown) => sys.api.post('/push/subscriptions', body, u.token);
    invalid(await post({ ...good, endpoint: 'not a url' }), 'endpoint');
    invalid(await post({ ...good, keys: { ...good.keys, p256dh: 'AAAA' } }), 'keys.p256dh');
    invalid(await post({ ...good, keys: { ...good.keys, auth: '***' } }), 'keys.auth');
    invalid(await post({ endpoint: good.endpoint }), 'keys');
    invalid(await post({ ...good, extra: 1 }), '(root)');
    // The same browser again: updated, not a second row.
    expect((await post(good)).status).toBe(201);
    const again = await post(good);
    expect(again.status).toBe(200);
    const other = await newUser();
    expect((await sys.api.del(`/push/subscriptions/${again.body.data.subscription.id}`, other.token)).status).toBe(404);
    expect((await sys.api.del(`/push/subscriptions/${again.body.data.subscription.id}`, u.token)).body.data).toEqual({ deleted: true });
    for (const res of [await sys.api.get('/push/vapid-public-key'), await sys.api.post('/push/subscriptions', good)]) {
      expect([res.status, res.body.code]).toEqual([401, 1002]);
    }
  });
});

describe('FCM', () => {
  it('sends an HTTP v1 message with a token from the service account\'s JWT; UNREGISTERED forgets the token', async () => {
    const u = await newUser();
    const token = `fcm-${randomUUID()}`;
    const res = await sys.api.post('/push/fcm-tokens', { token, platform: 'android' }, u.token);
    expect(res.status).toBe(201);
    expect((await sys.api.post('/push/fcm-tokens', { token, platform: 'android' }, u.token)).status).toBe(200);
    const taskId = await runFails(u);
    await eventually(async () => google.messages.some((m) => m.body.message.token === token), 30_000, 'FCM message');
    const sent = google.messages.find((m) => m.body.message.token === token)!;
    const [stored] = (await sys.api.get('/notifications', u.token)).body.data.list;
    expect(sent.path).toBe(`/v1/projects/${FakeFcm.PROJECT}/messages:send`);
    expect(sent.body.message).toEqual({
      token,
      notification: { title: 'Nightly backup: Run failed: DISK_FULL', body: 'no space' },
      data: { id: stored.id, kind: 'run.failed', task_id: taskId, links: JSON.stringify(stored.links) },
      android: { priority: 'HIGH' },
    });
    // The app is uninstalled: FCM answers UNREGISTERED, the token is forgotten, no retry.
    google.unregistered.add(token);
    const before = google.messages.length;
    await runFails(u, 'AGAIN');
    await eventually(async () => (await sys.orm.em.fork().count(FcmToken, { token })) === 0, 30_000, 'token forgotten');
    expect(google.messages.length - before).toBe(1);
  }, 60_000);

  it('refuses bad tokens with the contract codes', async () => {
    const u = await newUser();
    const bad = (res: Reply, path: string) => {
      expect([res.status, res.body.code]).toEqual([400, 1001]);
      expect((res.body.data.errors as { path: string }[]).map((e) => e.path)).toContain(path);
    };
    bad(await sys.api.post('/push/fcm-tokens', { token: '' }, u.token), 'token');
    bad(await sys.api.post('/push/fcm-tokens', { token: 'has spaces in it' }, u.token), 'token');
    bad(await sys.api.post('/push/fcm-tokens', { token: 'x', platform: 'symbian' }, u.token), 'platform');
    const res = await sys.api.post('/push/fcm-tokens', { token: `fcm-${randomUUID()}` }, u.token);
    expect((await sys.api.del(`/push/fcm-tokens/${res.body.data.fcm_token.id}`, (await newUser()).token)).status).toBe(404);
    expect((await sys.api.del(`/push/fcm-tokens/${res.body.data.fcm_token.id}`, u.token)).body.data).toEqual({ deleted: true });
  });
});

describe('a worker killed with kill -9', () => {
  it('between runs\' ends and their deliveries: each notification reaches each endpoint, under one webhook-id, none lost', async () => {
    // The deliveries run where the task worker runs: here a child process of the production entry.
    await sys.stopWorker();
    // The worker waits on the held answers longer than the test holds them.
    const workerEnv = { ...systemEnv, WEBHOOK_TIMEOUT_MS: '60000' };
    let worker = await startWorkerChild(sys.config, workerEnv);
    try {
      const u = await newUser();
      const hooks = { a: await addHook(u, '/crash-a'), b: await addHook(u, '/crash-b') };
      // In flight: the receivers hold their answers, the worker dies waiting for them.
      receiver.delays.set('/crash-a', 40_000);
      receiver.delays.set('/crash-b', 40_000);
      const inFlight = [await runEnds(u, 'run.failed'), await runEnds(u, 'run.completed')];
      await eventually(async () => (receiver.got.get('/crash-a')?.length ?? 0) >= 2 && (receiver.got.get('/crash-b')?.length ?? 0) >= 2, 30_000, 'requests in flight');
      await worker.kill();
      receiver.delays.clear();
      // Pending: runs that end while no worker runs.
      const pending = [await runEnds(u, 'run.completed'), await runEnds(u, 'run.failed')];
      await Promise.all(pending.map(dispatched));
      worker = await startWorkerChild(sys.config, workerEnv);

      const notifications = await eventually(async () => {
        const rows = await sys.orm.em.fork().find(Notification, { userId: u.userId });
        return rows.length === 4 ? rows : null;
      }, 10_000, 'four notifications');
      expect(new Set(notifications.map((n) => n.taskId))).toEqual(new Set([...inFlight, ...pending]));
      const ids = notifications.map((n) => n.id).sort();
      // The lost attempts come back once Temporal times them out (the activity's start-to-close).
      for (const hook of Object.values(hooks)) {
        await eventually(async () => {
          const log = await deliveries(u, hook);
          return log.length === 4 && log.every((d) => d.status === 'succeeded') ? log : null;
        }, 120_000, `deliveries of ${hook}`);
      }
      await new Promise((r) => setTimeout(r, 1000)); // nothing else arrives
      for (const path of ['/crash-a', '/crash-b']) {
        const got = receiver.got.get(path)!;
        // Every request verified with its endpoint's secret, and for each webhook-id always the
        // same message: a receiver that deduplicates by webhook-id (as Standard Webhooks asks)
        // sees each notification exactly once.
        expect(got.every((r) => r.verified)).toBe(true);
        const byId = new Map<string, Set<string>>();
        for (const r of got) byId.set(String(r.headers['webhook-id']), (byId.get(String(r.headers['webhook-id'])) ?? new Set()).add(r.body));
        expect([...byId.keys()].sort()).toEqual(ids);
        expect([...byId.values()].every((bodies) => bodies.size === 1)).toBe(true);
        // Resent only what the killed worker had in flight; the pending ones went out once.
        const sent = (id: string) => got.filter((r) => r.headers['webhook-id'] === id).length;
        for (const n of notifications) expect(sent(n.id)).toBe(pending.includes(n.taskId!) ? 1 : 2);
      }
    } finally {
      await worker.kill();
      await sys.startWorker();
    }
  }, 240_000);
});

describe('the outbox notice', () => {
  it('starts a delivery when its notification is stored and when a redelivery is asked, not at the next sweep', async () => {
    // A system whose sweep comes only after the test's end: whatever arrives was sent because the
    // statements announced their work on the outbox channel.
    await sys.stop();
    sys = await startSystem({ env: { ...systemEnv, NOTIFY_DISPATCH_MS: '60000' } });
    const u = await newUser();
    const hook = await addHook(u, '/woken');
    await runEnds(u, 'run.completed');
    const [first] = await eventually(async () => {
      const got = receiver.got.get('/woken') ?? [];
      return got.length ? got : null;
    }, 15_000, 'a delivery before the sweep');
    const [delivery] = await eventually(async () => {
      const l = await deliveries(u, hook, '&status=succeeded');
      return l.length ? l : null;
    }, 15_000, 'the delivery succeeded');
    const res = await sys.api.post(`/webhooks/deliveries/${delivery.id}/redeliver`, {}, u.token);
    expect(res.status).toBe(202);
    await eventually(async () => ((receiver.got.get('/woken')?.length ?? 0) >= 2 ? true : null), 15_000, 'the redelivery before the sweep');
    const got = receiver.got.get('/woken')!;
    expect(got.map((r) => r.headers['webhook-id'])).toEqual([first.headers['webhook-id'], first.headers['webhook-id']]);
  }, 90_000);
});

describe('a hostile account', () => {
  it('whose receivers hang holds at most its permits, and another account\'s delivery goes out meanwhile', async () => {
    // A deliveries worker with 20 slots and 3 permits per account: without the permits, the
    // hostile account's 30 hanging requests would hold all 20 slots for the request timeout (10 s)
    // and the other account's delivery would wait for one.
    const PERMITS = 3;
    await sys.stop();
    sys = await startSystem({ env: { ...systemEnv, DELIVERY_MAX_IN_FLIGHT_PER_ACCOUNT: String(PERMITS), DELIVERY_WORKER_SLOTS: '20' } });
    // The receivers that never answer count the requests they hold open (the measure is theirs,
    // not the engine's).
    let open = 0;
    let most = 0;
    const hanging = createServer((req) => {
      open += 1;
      most = Math.max(most, open);
      req.socket.once('close', () => { open -= 1; });
    });
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', () => r()));
    const hangUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
    try {
      const hostile = await newUser();
      for (let i = 0; i < 6; i++) {
        const res = await sys.api.post('/webhooks', { url: `${hangUrl}/hang/${i}` }, hostile.token);
        expect(res.status).toBe(201);
      }
      for (let i = 0; i < 5; i++) await runEnds(hostile, 'run.completed');
      await eventually(async () => (open >= PERMITS ? true : null), 15_000, 'the hostile account\'s requests in flight');

      const other = await newUser();
      await addHook(other, '/meanwhile');
      const before = Date.now();
      await runEnds(other, 'run.completed');
      const [got] = await eventually(async () => receiver.got.get('/meanwhile') ?? null, 15_000, 'the other account\'s delivery');
      // Well inside the hanging requests' 10 s timeout: it did not wait for one of them to give up.
      expect(got.at - before).toBeLessThan(4_000);
      expect(got.verified).not.toBeNull();
      // Hanging requests still held; never more than the permits at any moment.
      expect(open).toBeLessThanOrEqual(PERMITS);
      expect(most).toBe(PERMITS);
      // A delivery that has not made its first attempt yet has waited for a permit.
      const waited = await sys.orm.em.fork().findOne(NotificationDelivery, { userId: hostile.userId, attempts: 0, attemptingUntil: null, startedAt: { $ne: null } });
      expect(waited).not.toBeNull();
      await recordHistory(deliveryWorkflowId(waited!), 'notification-delivery-waited');
    } finally {
      hanging.closeAllConnections();
      await new Promise<void>((r) => hanging.close(() => r()));
    }
  }, 120_000);
});

describe('a user with no channel', () => {
  it('gets notifications stored dispatched by the run mirror\'s own write, which no pass claims or rewrites', async () => {
    const u = await newUser();
    const taskId = await runEnds(u, 'run.completed');
    // The notification's row as it is now was written by the transaction that logged its event
    // (PostgreSQL's xmin): no later write marked it. Read after a sweep has had its chance.
    await new Promise((r) => setTimeout(r, 500));
    const rows = await sys.orm.em.fork().getConnection().execute<{ same: boolean; dispatched: boolean }[]>(
      `select n.xmin::text = e.xmin::text as same, n.dispatched_at is not null as dispatched
         from notifications n join task_events e on e.task_id = n.task_id and e.seq = n.seq where n.task_id = ?`, [taskId]);
    expect(rows).toEqual([{ same: true, dispatched: true }]);
    // A webhook saved later changes the notifications to come, not this one.
    const hook = await addHook(u, '/later');
    const next = await runEnds(u, 'run.completed');
    await dispatched(next);
    expect(await deliveries(u, hook)).toHaveLength(1);
  }, 30_000);
});
