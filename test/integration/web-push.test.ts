// Web Push (issue 17): a browser's subscription saved over REST, pushes from the dispatcher's
// workflow to a push service on 127.0.0.1 that checks the VAPID signature and decrypts the
// payload with the browser's keys (http_ece, the RFC 8291 reference), a 410 forgetting the
// subscription, and quiet hours holding pushes for one digest.
import { createECDH, createPublicKey, randomBytes, randomUUID, verify } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import ece from 'http_ece';
import { NotificationDelivery, PushSubscription, Task, WorkflowVersion } from '../../src/db/entities.ts';
import { applyRunEvents } from '../../src/domain/run-mirror.ts';
import type { RunEvent } from '../../workflows/api.ts';
import { addDevice, addWorkflow, eventually, linear, signup, type Reply } from '../helpers/api.ts';
import { DELIVERY_TEST_ENV, TEST_VAPID } from '../helpers/delivery-env.ts';
import { startSystem, type System } from '../helpers/system.ts';

const vapid = TEST_VAPID;
let sys: System;
let service: PushService;

interface Browser {
  ecdh: ReturnType<typeof createECDH>;
  auth: Buffer;
  path: string;
}

interface Push {
  headers: IncomingHttpHeaders;
  payload: Record<string, any>;
  jwt: { aud: string; sub: string; exp: number } | null;
}

/** A push service: keeps each push decrypted with its browser's keys, answers `statuses` (201 by default). */
class PushService {
  readonly browsers = new Map<string, Browser>();
  readonly got = new Map<string, Push[]>();
  readonly statuses = new Map<string, number>();
  private server!: Server;
  url = '';

  async start() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        const b = this.browsers.get(path);
        let payload: Record<string, any> = {};
        try {
          payload = b ? JSON.parse(ece.decrypt(Buffer.concat(chunks), { version: 'aes128gcm', privateKey: b.ecdh, authSecret: b.auth }).toString('utf8')) : {};
        } catch {
          payload = { undecryptable: true };
        }
        this.got.set(path, [...(this.got.get(path) ?? []), { headers: req.headers, payload, jwt: vapidClaims(String(req.headers.authorization ?? '')) }]);
        res.statusCode = this.statuses.get(path) ?? 201;
        res.end();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A browser's subscription to this service, as PushSubscription.toJSON() gives it. */
  subscribe(): { json: { endpoint: string; keys: { p256dh: string; auth: string } }; path: string } {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const path = `/push/${randomUUID()}`;
    const auth = randomBytes(16);
    this.browsers.set(path, { ecdh, auth, path });
    return { path, json: { endpoint: `${this.url}${path}`, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } } };
  }

  stop() {
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** The claims of a `vapid t=..., k=...` header when its ES256 signature verifies with the server's public key; else null. */
function vapidClaims(header: string) {
  const m = /^vapid t=([^,]+),\s*k=(.+)$/.exec(header);
  if (!m || m[2] !== vapid.publicKey) return null;
  const [h, p, s] = m[1].split('.');
  const raw = Buffer.from(vapid.publicKey, 'base64url');
  const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33).toString('base64url') }, format: 'jwk' });
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
  return ok ? JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) : null;
}

interface TestUser { token: string; userId: string; deviceId: string; workflowId: string; versionId: string }

async function newUser(): Promise<TestUser> {
  const u = await signup(sys.api);
  const device = await addDevice(sys.api, u.token);
  const workflowId = await addWorkflow(sys.api, u.token, linear([{ type: 'demo.echo' }]), 'Nightly backup');
  const [version] = await sys.orm.em.fork().find(WorkflowVersion, { workflowId });
  return { token: u.token, userId: u.userId, deviceId: device.id, workflowId, versionId: version.id };
}

async function runFails(u: TestUser, code = 'DISK_FULL'): Promise<string> {
  const em = sys.orm.em.fork();
  const id = randomUUID();
  em.create(Task, {
    id, userId: u.userId, workflowId: u.workflowId, workflowVersionId: u.versionId, deviceId: u.deviceId, status: 'pending',
    statusReason: 'queued', priority: 'medium', parameters: {}, idempotencyKey: null, temporalWorkflowId: `task-${id}`, progress: 0,
    lastSeq: 0, result: null,
  });
  await em.flush();
  const at = Date.now();
  const events: RunEvent[] = [{ seq: 1, kind: 'run.started', at, data: {} }, { seq: 2, kind: 'run.failed', at: at + 1, data: { error: { code, message: 'no space' } } }];
  await applyRunEvents(sys.orm, id, events);
  return id;
}

async function subscribe(u: TestUser) {
  const browser = service.subscribe();
  const res = await sys.api.post('/push/subscriptions', { ...browser.json, expirationTime: null, user_agent: 'Test browser' }, u.token);
  expect(res.status).toBe(201);
  return { ...browser, id: res.body.data.subscription.id as string };
}

beforeAll(async () => {
  service = new PushService();
  await service.start();
  sys = await startSystem({ env: DELIVERY_TEST_ENV });
});

afterAll(async () => {
  await sys?.stop();
  await service?.stop();
});

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
