// Webhooks (issue 17): notifications POSTed to a receiver on 127.0.0.1 that verifies each request
// with the standardwebhooks library, through the dispatcher and one Temporal workflow per
// delivery; retries with backoff until a receiver recovers, failed deliveries in the log once
// their retries are spent, redelivery with the same webhook-id. Private targets are allowed
// here (WEBHOOK_ALLOW_PRIVATE_TARGETS, as the receiver is on loopback); notifications.test.ts
// checks the refusal with the default setting.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { Notification, Task, WorkflowVersion } from '../../src/db/entities.ts';
import { deliveryWorkflowId } from '../../src/domain/notification-dispatch.ts';
import { applyRunEvents } from '../../src/domain/run-mirror.ts';
import type { RunEvent } from '../../workflows/api.ts';
import { addDevice, addWorkflow, eventually, linear, signup, type Reply } from '../helpers/api.ts';
import { DELIVERY_MAX_ATTEMPTS, DELIVERY_TEST_ENV } from '../helpers/delivery-env.ts';
import { recordHistory } from '../helpers/histories.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let receiver: Receiver;

const MAX_ATTEMPTS = DELIVERY_MAX_ATTEMPTS;

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  /** What the standardwebhooks library made of it with the endpoint's secret (null: refused). */
  verified: { type: string; data: Record<string, unknown> } | null;
}

/** A webhook receiver on 127.0.0.1: answers `status(path)` and keeps what it got per path. */
class Receiver {
  readonly got = new Map<string, Received[]>();
  readonly secrets = new Map<string, string>();
  readonly statuses = new Map<string, number>();
  private server!: Server;
  url = '';

  async start() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const path = req.url ?? '/';
        let verified: Received['verified'] = null;
        try {
          verified = new Webhook(this.secrets.get(path) ?? '').verify(body, req.headers as Record<string, string>) as Received['verified'];
        } catch {
          verified = null;
        }
        this.got.set(path, [...(this.got.get(path) ?? []), { headers: req.headers, body, verified, at: Date.now() }]);
        res.statusCode = this.statuses.get(path) ?? 204;
        res.end(res.statusCode >= 300 ? 'busy' : undefined);
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop() {
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

interface TestUser { token: string; userId: string; deviceId: string; workflowId: string; versionId: string }

async function newUser(): Promise<TestUser> {
  const u = await signup(sys.api);
  const device = await addDevice(sys.api, u.token);
  const workflowId = await addWorkflow(sys.api, u.token, linear([{ type: 'demo.echo' }]), 'Nightly backup');
  const [version] = await sys.orm.em.fork().find(WorkflowVersion, { workflowId });
  return { token: u.token, userId: u.userId, deviceId: device.id, workflowId, versionId: version.id };
}

/** A run's end written through the run mirror (no run behind it): one notification of `kind`'s event. */
async function runEnds(u: TestUser, kind: 'run.completed' | 'run.failed'): Promise<string> {
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
    { seq: 2, kind, at: at + 1, data: kind === 'run.failed' ? { error: { code: 'DISK_FULL', message: 'no space' } } : {} },
  ];
  await applyRunEvents(sys.orm, id, events);
  return id;
}

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
  receiver = new Receiver();
  await receiver.start();
  sys = await startSystem({ env: DELIVERY_TEST_ENV });
});

afterAll(async () => {
  await sys?.stop();
  await receiver?.stop();
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
    await recordHistory(deliveryWorkflowId({ notificationId: failed.id, channel: 'webhook', endpointId: failures, subscriptionId: null, redeliveries: 0 }), 'notification-delivered');
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
    await recordHistory(deliveryWorkflowId({ notificationId: failed.notification_id, channel: 'webhook', endpointId: hook, subscriptionId: null, redeliveries: 0 }), 'notification-delivery-failed');
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
