// Security (issue 9): the authorization matrix of every route in the route list, owner scoping
// of every `:id` route, the WebSocket roles, secrets kept out of the logs, and the security
// headers on every kind of response.
import { createECDH, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { offlineRoutes } from '../../scripts/openapi.ts';
import { Device, FcmToken, Notification, NotificationDelivery } from '../../src/db/entities.ts';
import { AccessTokens } from '../../src/domain/tokens.ts';
import { MAX_BODY_BYTES } from '../../src/http/route.ts';
import type { RouteSpec } from '../../src/http/route.ts';
import { addDevice, addWorkflow, eventually, linear, signup, type Reply } from '../helpers/api.ts';
import { connectTestDevice, testHandlers, type TestDevice } from '../helpers/devices.ts';
import { startSystem, type System } from '../helpers/system.ts';

const PASSWORD = 'correct horse battery';

/** Everything the system logs (LOG_LEVEL=debug), for the secrets check. */
let logText = '';
// A plain pino destination (a Node Writable here made the test worker slow to exit).
const logStream = {
  write(line: string) {
    logText += line;
  },
};

let sys: System;
const cleanups: (() => Promise<unknown>)[] = [];

const dataDir = mkdtempSync(join(tmpdir(), 'jarvis-security-'));

beforeAll(async () => {
  sys = await startSystem({
    logStream,
    env: {
      LOG_LEVEL: 'debug',
      DATA_DIR: dataDir,
      // Hundreds of requests from 127.0.0.1 here: the limits have their own tests.
      RATE_LIMIT_IP_PER_MIN: '1000000',
      RATE_LIMIT_USER_PER_MIN: '1000000',
      RATE_LIMIT_AUTH_PER_MIN: '1000000',
    },
  });
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await sys?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const ROUTES: RouteSpec[] = offlineRoutes();
const key = (r: RouteSpec) => `${r.method} ${r.path}`;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** The route's path with every `:param` filled in. */
const fill = (path: string, value: (name: string) => string) =>
  path.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => encodeURIComponent(value(name)));

async function call(r: RouteSpec, path: string, opts: { token?: string; authorization?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (opts.authorization !== undefined) headers.Authorization = opts.authorization;
  const send = opts.body !== undefined ? { body: opts.body } : r.method === 'get' || r.method === 'delete' ? {} : { body: {} };
  return sys.api.req(r.method.toUpperCase(), `/api/v1${path}`, { ...send, token: opts.token, headers });
}

/** An error answer that says what went wrong and nothing more. */
function expectNoLeak(res: Reply, what: string) {
  expect([what, Object.keys(res.body ?? {}).sort()]).toEqual([what, ['code', 'data', 'message', 'request_id']]);
  expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
  const text = JSON.stringify({ ...res.body, request_id: undefined });
  expect([what, text]).not.toEqual([what, expect.stringMatching(/stack|\bat \S+ \(|\.ts:\d+|node_modules/i)]);
  expect([what, text]).not.toEqual([what, expect.stringMatching(/\b(select|insert|update|delete)\b[^"]*\b(from|into|set|where)\b/i)]);
  expect([what, text]).not.toEqual([what, expect.stringMatching(/postgres|mikro|sql|duplicate key|violates|temporal/i)]);
  expect([what, text.match(UUID)]).toEqual([what, null]);
}

async function login(email: string) {
  const res = await sys.api.post('/auth/login', { email, password: PASSWORD });
  expect(res.status).toBe(200);
  return res.body.data as { access_token: string; refresh_token: string; user: { id: string } };
}

const sessionOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()).sid as string;

describe('authorization matrix of every route', () => {
  it('the route list is the real one', () => {
    expect(ROUTES.length).toBeGreaterThan(20);
    expect(ROUTES.map(key)).toEqual(expect.arrayContaining(['get /tasks/:id', 'post /auth/login', 'post /workflows']));
  });

  it('every user route answers 401 code 1002 to no, forged, alg-none, expired, revoked and device tokens, and leaks nothing', async () => {
    const a = await signup(sys.api);
    const device = await addDevice(sys.api, a.token);
    const session = sessionOf(a.token);
    const expired = await new AccessTokens(sys.config.JWT_SECRET, 60).issue(a.userId, session, -30);
    const forged = await new SignJWT({ typ: 'access', sid: session }).setProtectedHeader({ alg: 'HS256' })
      .setSubject(a.userId).setJti('x').setIssuer('jarvis').setAudience('jarvis-api').setExpirationTime('1h')
      .sign(new TextEncoder().encode('not-the-server-secret-not-the-server-secret'));
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const algNone = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: a.userId, sid: session, typ: 'access', jti: 'x', iss: 'jarvis', aud: 'jarvis-api', exp })}.`;
    const revoked = await login(a.email);
    expect((await sys.api.post('/auth/logout', {}, revoked.access_token)).status).toBe(200);

    const kinds: [string, string | undefined][] = [
      ['no token', undefined],
      ['empty bearer', 'Bearer '],
      ['basic scheme', `Basic ${Buffer.from(`${a.email}:${PASSWORD}`).toString('base64')}`],
      ['bad signature', `Bearer ${forged}`],
      ['alg none', `Bearer ${algNone}`],
      ['expired', `Bearer ${expired}`],
      ['revoked (logged out)', `Bearer ${revoked.access_token}`],
      ['device token', `Bearer ${device.deviceToken}`],
    ];
    const userRoutes = ROUTES.filter((r) => r.auth === 'user');
    expect(userRoutes.length).toBeGreaterThan(20);
    for (const r of userRoutes) {
      const path = fill(r.path, () => randomUUID());
      for (const [kind, authorization] of kinds) {
        const res = await call(r, path, { authorization });
        const what = `${key(r)} with ${kind}`;
        expect([what, res.status, res.body?.code, res.body?.data]).toEqual([what, 401, 1002, null]);
        expectNoLeak(res, what);
      }
    }
    // The valid token of the same session still works: the matrix refused the credentials only.
    expect((await sys.api.get('/auth/me', a.token)).status).toBe(200);
  }, 60_000);
});

// ---- owner scoping -----------------------------------------------------------------------------

type Resource = 'workflow' | 'device' | 'task' | 'schedule' | 'file' | 'notification' | 'webhook' | 'delivery' | 'push_subscription' | 'fcm_token';

/**
 * Every route with a path parameter: whose id it takes and a body that passes its validation
 * (the test below fails for a `:param` route missing here). No route is skipped: user A gets
 * one of each resource (a file when the upload route exists).
 */
/** Each :id route, whose resource `:id` names; `fixed`: its other path parameters (A's values). */
const ID_ROUTES: Record<string, { resource: Resource; body?: unknown; fixed?: Record<string, string> }> = {
  'get /users/devices/:id': { resource: 'device' },
  'put /users/devices/:id': { resource: 'device', body: { device_name: 'Renamed by B' } },
  'post /users/devices/:id/token': { resource: 'device' },
  'delete /users/devices/:id': { resource: 'device' },
  'get /workflows/:id': { resource: 'workflow' },
  'put /workflows/:id': { resource: 'workflow', body: { name: 'Renamed by B', is_archived: true } },
  'get /workflows/:id/export': { resource: 'workflow' },
  'delete /workflows/:id': { resource: 'workflow' },
  'get /workflows/:id/versions': { resource: 'workflow' },
  'get /workflows/:id/versions/:version': { resource: 'workflow', fixed: { version: '1' } },
  'get /workflows/:id/versions/:version/export': { resource: 'workflow', fixed: { version: '1' } },
  'post /workflows/:id/versions/:version/restore': { resource: 'workflow', fixed: { version: '1' } },
  'get /tasks/:id': { resource: 'task' },
  'post /tasks/:id/pause': { resource: 'task', body: { reason: 'B' } },
  'post /tasks/:id/resume': { resource: 'task', body: {} },
  'post /tasks/:id/cancel': { resource: 'task', body: { reason: 'B' } },
  'put /tasks/:id/status': { resource: 'task', body: { status: 'cancelled' } },
  'post /tasks/:id/approval': { resource: 'task', body: { approved: true } },
  'post /tasks/:id/retry': { resource: 'task', body: { from_failed_step: true } },
  'get /tasks/:id/events': { resource: 'task' },
  'delete /tasks/:id': { resource: 'task' },
  'get /schedules/:id': { resource: 'schedule' },
  'post /schedules/:id/pause': { resource: 'schedule' },
  'post /schedules/:id/resume': { resource: 'schedule' },
  'delete /schedules/:id': { resource: 'schedule' },
  'get /tasks/:id/logs': { resource: 'task' },
  'get /tasks/:id/artifacts': { resource: 'task' },
  // A's task never runs here, so it has no artifact: B's 404 on A's real artifacts is checked
  // in step-artifacts.test.ts; here the task id is what is swept.
  'get /tasks/:id/artifacts/:artifact_id/content': { resource: 'task', fixed: { artifact_id: '0d6f3c1e-9b7a-4c2d-8e5f-1a2b3c4d5e6f' } },
  'get /tasks/:id/artifacts/:artifact_id/thumbnail': { resource: 'task', fixed: { artifact_id: '0d6f3c1e-9b7a-4c2d-8e5f-1a2b3c4d5e6f' } },
  'get /files/:id': { resource: 'file' },
  'get /files/:id/content': { resource: 'file' },
  'delete /files/:id': { resource: 'file' },
  'get /notifications/:id/deliveries': { resource: 'notification' },
  'put /webhooks/:id': { resource: 'webhook', body: { enabled: false } },
  'delete /webhooks/:id': { resource: 'webhook' },
  'get /webhooks/:id/deliveries': { resource: 'webhook' },
  'post /webhooks/deliveries/:id/redeliver': { resource: 'delivery' },
  'delete /push/subscriptions/:id': { resource: 'push_subscription' },
  'delete /push/fcm-tokens/:id': { resource: 'fcm_token' },
};
const hasRoute = (k: string) => ROUTES.some((r) => key(r) === k);

describe('owner scoping of every :id route', () => {
  const idRoutes = ROUTES.filter((r) => r.path.includes(':'));
  let a: { token: string; userId: string; email: string };
  let b: { token: string; userId: string; email: string };
  const ids = {} as Record<Resource, string>;
  let deviceTokenHash: string;

  beforeAll(async () => {
    a = await signup(sys.api);
    b = await signup(sys.api);
    const device = await addDevice(sys.api, a.token); // never connects: A's task just waits
    ids.device = device.id;
    ids.workflow = await addWorkflow(sys.api, a.token, linear([{ type: 'demo.echo', params: { text: 'A' } }]), 'A workflow');
    const task = await sys.api.post('/tasks', { workflow_id: ids.workflow, device_id: ids.device }, a.token);
    expect(task.status).toBe(201);
    ids.task = task.body.data.task.id;
    cleanups.push(() => sys.api.post(`/tasks/${ids.task}/cancel`, {}, a.token));
    const schedule = await sys.api.post('/schedules', {
      workflow_id: ids.workflow, device_id: ids.device, cron: '0 9 * * 1-5', paused: true,
    }, a.token);
    expect(schedule.status).toBe(201);
    ids.schedule = schedule.body.data.schedule.id;
    cleanups.push(() => sys.api.del(`/schedules/${ids.schedule}`, a.token));
    deviceTokenHash = (await sys.orm.em.fork().findOneOrFail(Device, { id: ids.device })).tokenHash;
    // A's notification, webhook and a finished delivery of it, a browser and an app install.
    const hook = await sys.api.post('/webhooks', { url: 'https://example.com/a-hook' }, a.token);
    expect(hook.status).toBe(201);
    ids.webhook = hook.body.data.webhook.id;
    const browserKey = createECDH('prime256v1');
    browserKey.generateKeys();
    const sub = await sys.api.post('/push/subscriptions', {
      endpoint: `https://push.example.com/${randomUUID()}`, keys: { p256dh: browserKey.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') },
    }, a.token);
    expect(sub.status).toBe(201);
    ids.push_subscription = sub.body.data.subscription.id;
    const em = sys.orm.em.fork();
    ids.notification = randomUUID();
    em.create(Notification, { id: ids.notification, userId: a.userId, kind: 'run.completed', title: 'A\'s run completed', taskId: ids.task, seq: 1000 });
    await em.flush(); // before its delivery: the entities hold no relations to order the inserts by
    ids.delivery = randomUUID();
    em.create(NotificationDelivery, {
      id: ids.delivery, userId: a.userId, notificationId: ids.notification, channel: 'webhook', endpointId: ids.webhook, status: 'succeeded',
      attempts: 1, redeliveries: 0, startedAt: new Date(), finishedAt: new Date(),
    });
    ids.fcm_token = randomUUID();
    em.create(FcmToken, { id: ids.fcm_token, userId: a.userId, token: `fcm-${randomUUID()}`, platform: 'android' });
    await em.flush();
    if (hasRoute('post /files/upload')) {
      const form = new FormData();
      form.append('file', new Blob(['A\'s secret notes\n'], { type: 'text/plain' }), 'notes.txt');
      const res = await fetch(`${sys.url}/api/v1/files/upload`, { method: 'POST', body: form, headers: { Authorization: `Bearer ${a.token}` } });
      const body = await res.json() as { data: { file: { id: string } } };
      expect(res.status).toBe(201);
      ids.file = body.data.file.id;
    }
  });

  it('every :param route has an entry with a body that passes its validation', () => {
    expect(idRoutes.length).toBeGreaterThan(15);
    for (const r of idRoutes) {
      const entry = ID_ROUTES[key(r)];
      expect([key(r), entry ? 'has an entry' : 'has no entry in ID_ROUTES']).toEqual([key(r), 'has an entry']);
      expect([key(r), [...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1])]).toEqual([key(r), ['id', ...Object.keys(entry.fixed ?? {})]]);
      if (r.body) {
        const parsed = r.body.safeParse(entry.body ?? {});
        expect([key(r), parsed.success ? 'valid body' : JSON.stringify(parsed.error.issues)]).toEqual([key(r), 'valid body']);
      } else {
        expect([key(r), entry.body]).toEqual([key(r), undefined]);
      }
      if (r.query) expect([key(r), r.query.safeParse({}).success]).toEqual([key(r), true]);
    }
  });

  it('user B with user A\'s real ids gets 404 code 2001 everywhere, and A\'s data is untouched', async () => {
    for (const r of idRoutes) {
      const entry = ID_ROUTES[key(r)];
      expect([key(r), ids[entry.resource] ? 'A has one' : `no ${entry.resource} of A`]).toEqual([key(r), 'A has one']);
      const res = await call(r, fill(r.path, (name) => (name === 'id' ? ids[entry.resource] : entry.fixed![name])), { token: b.token, body: entry.body });
      const what = `${key(r)} as B on A's ${entry.resource}`;
      expect([what, res.status, res.body.code, res.body.data]).toEqual([what, 404, 2001, null]);
      expectNoLeak(res, what);
    }
    // Ids in bodies are scoped too: B cannot run A's workflow, nor on A's device.
    const bDevice = await addDevice(sys.api, b.token);
    const bWorkflow = await addWorkflow(sys.api, b.token, linear([{ type: 'demo.echo' }]));
    for (const body of [
      { workflow_id: ids.workflow, device_id: bDevice.id },
      { workflow_id: bWorkflow, device_id: ids.device },
    ]) {
      const task = await sys.api.post('/tasks', body, b.token);
      expect([task.status, task.body.code]).toEqual([404, 2001]);
      const schedule = await sys.api.post('/schedules', { ...body, interval_seconds: 3600, paused: true }, b.token);
      expect([schedule.status, schedule.body.code]).toEqual([404, 2001]);
    }
    if (hasRoute('post /logs')) {
      const log = await sys.api.post('/logs', { level: 'info', message: 'B writes into A\'s task', task_id: ids.task }, b.token);
      expect([log.status, log.body.code]).toEqual([404, 2001]);
    }
    // Filters by A's ids find nothing of B's, and nothing of A's.
    expect((await sys.api.get(`/tasks?workflow_id=${ids.workflow}`, b.token)).body.data.total).toBe(0);
    expect((await sys.api.get(`/tasks?device_id=${ids.device}`, b.token)).body.data.total).toBe(0);
    if (hasRoute('get /logs')) {
      const logs = await sys.api.get(`/logs?task_id=${ids.task}`, b.token);
      expect([logs.status, logs.body.data.list]).toEqual([200, []]);
    }

    // Nothing B did reached A's resources.
    const wf = await sys.api.get(`/workflows/${ids.workflow}`, a.token);
    expect(wf.body.data.workflow).toMatchObject({ name: 'A workflow', is_archived: false, version: 1 });
    const task = await sys.api.get(`/tasks/${ids.task}`, a.token);
    expect(task.body.data.task.status).toBe('pending');
    const events = (await sys.api.get(`/tasks/${ids.task}/events`, a.token)).body.data.list as { kind: string }[];
    expect(events.map((e) => e.kind)).not.toContain('run.cancel_requested');
    expect((await sys.api.get(`/schedules/${ids.schedule}`, a.token)).body.data.schedule.paused).toBe(true);
    const device = await sys.api.get(`/users/devices/${ids.device}`, a.token);
    expect(device.body.data.device.device_name).toBe('Test PC');
    expect((await sys.orm.em.fork().findOneOrFail(Device, { id: ids.device })).tokenHash).toBe(deviceTokenHash);
    expect((await sys.api.get('/tasks', a.token)).body.data.total).toBe(1);
    if (ids.file) {
      const content = await fetch(`${sys.url}/api/v1/files/${ids.file}/content`, { headers: { Authorization: `Bearer ${a.token}` } });
      expect([content.status, await content.text()]).toEqual([200, 'A\'s secret notes\n']);
    }
  });

  it('an id that is not a UUID answers 400 code 1001 with path "id"', async () => {
    for (const r of idRoutes) {
      const entry = ID_ROUTES[key(r)];
      for (const bad of ['not-a-uuid', '1', `${randomUUID()}x`, "' or 1=1 --", '../tasks', '%00', '\u0000']) {
        const res = await call(r, fill(r.path, (name) => (name === 'id' ? bad : entry.fixed![name])), { token: a.token, body: entry.body });
        const what = `${key(r)} with id ${JSON.stringify(bad)}`;
        expect([what, res.status, res.body.code, res.body.data?.errors?.[0]?.path]).toEqual([what, 400, 1001, 'id']);
        expectNoLeak(res, what);
      }
    }
  });
});

// ---- WebSocket ---------------------------------------------------------------------------------

type Frame = { type: string; re?: string; payload: Record<string, unknown> };

function nextFrame(ws: WebSocket, test: (f: Frame) => boolean, timeoutMs = 10_000) {
  return new Promise<Frame>((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.off('message', on);
      reject(new Error('no matching frame'));
    }, timeoutMs);
    timer.unref();
    const on = (raw: WebSocket.RawData) => {
      const f = JSON.parse(raw.toString()) as Frame;
      if (test(f)) {
        clearTimeout(timer);
        ws.off('message', on);
        resolve(f);
      }
    };
    ws.on('message', on);
  });
}

async function rawSocket(url: string, token?: string) {
  const ws = new WebSocket(url, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  const hello = await nextFrame(ws, (f) => f.type === 'hello');
  return { ws, hello };
}

/** Sends a frame and resolves with the answer to it (`re`). */
async function ask(ws: WebSocket, type: string, payload: unknown) {
  const id = randomUUID();
  const answer = nextFrame(ws, (f) => f.re === id);
  ws.send(JSON.stringify({ id, type, ts: Date.now(), payload }));
  return answer;
}

describe('WebSocket roles and ownership', () => {
  it('subscribing to another user\'s task answers error 2001', async () => {
    const a = await signup(sys.api);
    const device = await addDevice(sys.api, a.token);
    const wf = await addWorkflow(sys.api, a.token, linear([{ type: 'demo.echo' }]));
    const taskId = (await sys.api.post('/tasks', { workflow_id: wf, device_id: device.id }, a.token)).body.data.task.id;
    cleanups.push(() => sys.api.post(`/tasks/${taskId}/cancel`, {}, a.token));
    const b = await signup(sys.api);
    const { ws } = await rawSocket(sys.wsUrl, b.token);
    expect(await ask(ws, 'subscribe', { task_id: taskId })).toMatchObject({ type: 'error', payload: { code: 2001 } });
    expect(await ask(ws, 'subscribe', { task_id: taskId, after_seq: 0, raw: true })).toMatchObject({ type: 'error', payload: { code: 2001 } });
    // The owner may.
    const own = await rawSocket(sys.wsUrl, a.token);
    expect(await ask(own.ws, 'subscribe', { task_id: taskId })).toMatchObject({ type: 'subscribed', payload: { task_id: taskId } });
    ws.close();
    own.ws.close();
  });

  it('a device socket does not accept monitor frames, and a monitor socket does not accept device frames (1001)', async () => {
    const a = await signup(sys.api);
    const device = await addDevice(sys.api, a.token);
    const dev = await rawSocket(sys.wsUrl, device.deviceToken);
    expect(dev.hello.payload.role).toBe('device');
    for (const [type, payload] of [
      ['subscribe', { scope: 'user' }],
      ['subscribe', { task_id: randomUUID() }],
      ['unsubscribe', { scope: 'user' }],
    ] as const) {
      expect([type, await ask(dev.ws, type, payload)]).toEqual([type, expect.objectContaining({ type: 'error', payload: expect.objectContaining({ code: 1001 }) })]);
    }
    const mon = await rawSocket(sys.wsUrl, a.token);
    expect(mon.hello.payload.role).toBe('monitor');
    const key = `${randomUUID()}:s1:1`;
    for (const [type, payload] of [
      ['step/result', { key, output: { forged: true } }],
      ['step/error', { key, error: { code: 'X', message: 'forged' } }],
      ['step/accept', { key }],
      ['step/progress', { key, percent: 50 }],
      ['log', { level: 'info', message: 'forged', task_id: randomUUID() }],
      ['device/status', { busy: true }],
    ] as const) {
      expect([type, await ask(mon.ws, type, payload)]).toEqual([type, expect.objectContaining({ type: 'error', payload: expect.objectContaining({ code: 1001 }) })]);
    }
    // Both sockets are still up and answer pings.
    expect((await ask(dev.ws, 'ping', {})).type).toBe('pong');
    expect((await ask(mon.ws, 'ping', {})).type).toBe('pong');
    dev.ws.close();
    mon.ws.close();
  });

  it('a device cannot answer a step dispatched to another device; that run is unaffected and completes', async () => {
    const a = await signup(sys.api);
    const mine = await addDevice(sys.api, a.token);
    const sibling = await addDevice(sys.api, a.token); // another PC of the same user
    const b = await signup(sys.api);
    const stranger = await addDevice(sys.api, b.token); // another user's PC
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    const pc: TestDevice = await connectTestDevice(sys.wsUrl, mine.deviceToken, {
      ...testHandlers(),
      'test.hold': async () => {
        await released;
        return { by: 'the right device' };
      },
    });
    cleanups.push(() => pc.client.stop());
    const wf = await addWorkflow(sys.api, a.token, linear([{ type: 'test.hold' }]));
    const taskId = (await sys.api.post('/tasks', { workflow_id: wf, device_id: mine.id }, a.token)).body.data.task.id as string;
    const dispatch = await eventually(async () => pc.dispatches(taskId)[0], 20_000, 'dispatch');
    const stepKey = dispatch.key;

    for (const other of [sibling, stranger]) {
      const { ws } = await rawSocket(sys.wsUrl, other.deviceToken);
      for (const [type, payload] of [
        ['step/accept', { key: stepKey }],
        ['step/progress', { key: stepKey, percent: 99, message: 'forged' }],
        ['step/result', { key: stepKey, output: { by: 'an impostor' } }],
        ['step/error', { key: stepKey, error: { code: 'FORGED', message: 'forged', retryable: false } }],
      ] as const) {
        expect([type, await ask(ws, type, payload)]).toEqual([type, expect.objectContaining({ type: 'error', payload: expect.objectContaining({ code: 2001 }) })]);
      }
      ws.close();
    }
    // Still running the real step.
    await eventually(async () => (await sys.api.get(`/tasks/${taskId}`, a.token)).body.data.task.status === 'running', 10_000, 'running');
    release();
    const task = await eventually(async () => {
      const t = (await sys.api.get(`/tasks/${taskId}`, a.token)).body.data.task;
      return ['completed', 'failed', 'cancelled'].includes(t.status) ? t : null;
    }, 30_000, 'run end');
    expect(task.status).toBe('completed');
    expect(task.steps).toEqual([expect.objectContaining({ step_id: 's1', status: 'completed', output: { by: 'the right device' } })]);
    const events = (await sys.api.get(`/tasks/${taskId}/events`, a.token)).body.data.list as { kind: string }[];
    expect(events.map((e) => e.kind)).not.toContain('step.failed');
  });
});

// ---- secrets in logs ---------------------------------------------------------------------------

describe('secrets never reach the logs', () => {
  it('password, access and refresh tokens and device tokens stay out of debug logs', async () => {
    const from = logText.length;
    const email = `secret-${randomUUID()}@example.com`;
    const password = `pw-${randomUUID()}`;
    expect((await sys.api.post('/auth/register', { email, password, name: 'Secret Keeper' })).status).toBe(201);
    // A wrong password too (failed logins are where passwords tend to be logged).
    expect((await sys.api.post('/auth/login', { email, password: `${password}-wrong` })).status).toBe(401);
    const first = await sys.api.post('/auth/login', { email, password });
    expect(first.status).toBe(200);
    const refreshed = await sys.api.post('/auth/refresh', { refresh_token: first.body.data.refresh_token });
    expect(refreshed.status).toBe(200);
    const access = refreshed.body.data.access_token as string;
    const dev = await sys.api.post('/users/devices', { device_id: `pc-${randomUUID()}`, device_name: 'Secret PC' }, access);
    expect(dev.status).toBe(201);
    const deviceToken = dev.body.data.device_token as string;
    const rotated = await sys.api.post(`/users/devices/${dev.body.data.device.id}/token`, {}, access);
    const rotatedToken = rotated.body.data.device_token as string;
    // Bad requests carrying secrets: a bad body, a spent device token on the socket.
    expect((await sys.api.post('/auth/register', { email, password, extra: deviceToken })).status).toBe(400);
    const refused = new WebSocket(`${sys.wsUrl}?token=${deviceToken}`);
    refused.on('error', () => undefined);
    await new Promise((r) => refused.once('close', r));

    // A device connects with ?token= on the URL and runs a step; a monitor with ?token= watches.
    const pc = new WebSocket(`${sys.wsUrl}?token=${encodeURIComponent(rotatedToken)}`);
    const pcHello = await nextFrame(pc, (f) => f.type === 'hello');
    expect(pcHello.payload.role).toBe('device');
    pc.on('message', (raw) => {
      const f = JSON.parse(raw.toString()) as Frame;
      if (f.type === 'step/dispatch') {
        pc.send(JSON.stringify({ id: randomUUID(), type: 'step/result', payload: { key: f.payload.key, output: { ok: true } } }));
      }
    });
    const monitor = new WebSocket(`${sys.wsUrl}?token=${encodeURIComponent(access)}`);
    await nextFrame(monitor, (f) => f.type === 'hello');
    const wf = await addWorkflow(sys.api, access, linear([{ type: 'demo.echo', params: { text: 'hi' } }]));
    const taskId = (await sys.api.post('/tasks', { workflow_id: wf, device_id: dev.body.data.device.id }, access)).body.data.task.id;
    const done = nextFrame(monitor, (f) => f.type === 'task/event' && f.payload.kind === 'run.completed', 30_000);
    monitor.send(JSON.stringify({ id: randomUUID(), type: 'subscribe', payload: { task_id: taskId } }));
    await done;
    expect((await sys.api.post('/auth/logout', {}, access)).status).toBe(200);
    // A spent refresh token, then one of a logged-out session: both refused.
    expect((await sys.api.post('/auth/refresh', { refresh_token: first.body.data.refresh_token })).status).toBe(401);
    expect((await sys.api.post('/auth/refresh', { refresh_token: refreshed.body.data.refresh_token })).status).toBe(401);
    pc.close();
    monitor.close();
    await new Promise((r) => setTimeout(r, 300)); // let the last lines flush

    const logs = logText.slice(from);
    expect(logs).toContain('"level":20'); // debug lines are really there
    expect(logs).toContain('"path":"/api/v1/auth/login"');
    const secrets = {
      password,
      'access token': first.body.data.access_token,
      'refreshed access token': access,
      'refresh token': first.body.data.refresh_token,
      'new refresh token': refreshed.body.data.refresh_token,
      'device token': deviceToken,
      'rotated device token': rotatedToken,
    };
    for (const [what, secret] of Object.entries(secrets)) {
      expect([what, logs.includes(secret)]).toEqual([what, false]);
      // Nor a recognisable piece of it (a JWT's signature, the random part of an opaque token).
      const tail = secret.split('.').at(-1)!.slice(-20);
      expect([what, logs.includes(tail)]).toEqual([what, false]);
    }
  }, 60_000);
});

// ---- security headers --------------------------------------------------------------------------

describe('security headers on every kind of response', () => {
  it('nosniff, DENY, Referrer-Policy and a CSP on 200, 400, 401, 404, 405, 413, 415, /docs, /metrics', async () => {
    const { token } = await signup(sys.api);
    const api = (path: string) => `${sys.url}/api/v1${path}`;
    const json = { 'Content-Type': 'application/json' };
    const cases: [string, number | null, () => Promise<Response>][] = [
      ['healthz', 200, () => fetch(`${sys.url}/healthz`)],
      ['200 json', 200, () => fetch(api('/auth/me'), { headers: { Authorization: `Bearer ${token}` } })],
      ['201 json', 201, () => fetch(api('/workflows'), {
        method: 'POST', headers: { ...json, Authorization: `Bearer ${token}` },
        body: JSON.stringify({ name: 'h', definition: linear([{ type: 'demo.echo' }]) }),
      })],
      ['400 bad json', 400, () => fetch(api('/auth/login'), { method: 'POST', headers: json, body: '{"email":' })],
      ['400 bad id', 400, () => fetch(api('/tasks/nope'), { headers: { Authorization: `Bearer ${token}` } })],
      ['401', 401, () => fetch(api('/tasks'))],
      ['404 route', 404, () => fetch(api('/no-such-route'))],
      ['404 resource', 404, () => fetch(api(`/tasks/${randomUUID()}`), { headers: { Authorization: `Bearer ${token}` } })],
      ['404 outside the api', 404, () => fetch(`${sys.url}/etc/passwd`)],
      ['405', 405, () => fetch(api('/tasks'), { method: 'PATCH', headers: { Authorization: `Bearer ${token}` } })],
      ['413', 413, () => fetch(api('/auth/login'), { method: 'POST', headers: json, body: 'x'.repeat(MAX_BODY_BYTES + 1) })],
      ['415', 415, () => fetch(api('/auth/login'), { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'hi' })],
      ['docs', 200, () => fetch(`${sys.url}/docs`)],
      ['openapi.json', 200, () => fetch(`${sys.url}/api/v1/openapi.json`)],
      ['metrics', 200, () => fetch(`${sys.url}/metrics`)],
      // The monitor page, where there is one (a 404 otherwise, which needs the headers too).
      ['monitor page', null, () => fetch(`${sys.url}/monitor`)],
    ];
    for (const [what, status, send] of cases) {
      const res = await send();
      await res.arrayBuffer();
      const h = (name: string) => res.headers.get(name);
      expect([what, status === null ? [200, 404].includes(res.status) : res.status]).toEqual([what, status ?? true]);
      expect([what, h('x-content-type-options')]).toEqual([what, 'nosniff']);
      expect([what, h('x-frame-options')]).toEqual([what, 'DENY']);
      expect([what, h('referrer-policy')]).toEqual([what, expect.stringMatching(/^(no-referrer|same-origin|strict-origin(-when-cross-origin)?)$/)]);
      expect([what, h('content-security-policy')]).toEqual([what, expect.stringContaining("frame-ancestors 'none'")]);
      expect([what, h('x-powered-by')]).toEqual([what, null]);
    }
  });
});
