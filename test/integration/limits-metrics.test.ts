// Rate limits (per IP, per user, login/register brute force), body limits, security headers on
// every kind of response, and GET /metrics (route patterns, runs, sockets, process metrics).
// The system trusts X-Forwarded-For (TRUST_PROXY=true) so each test can be its own client IP.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DeviceClient, demoHandlers } from '../../src/clients/device-client.ts';
import { TASK_STATUSES } from '../../src/db/entities.ts';
import { AccessTokens } from '../../src/domain/tokens.ts';
import { createApp } from '../../src/http/app.ts';
import { DEFAULT_BODY_BYTES, MAX_BODY_BYTES, PARAMETERS_BODY_BYTES } from '../../src/http/route.ts';
import type { Orm } from '../../src/db/orm.ts';
import { createLogger } from '../../src/logger.ts';
import { eventually, type Reply } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

const IP_PER_MIN = 20;
const USER_PER_MIN = 10;
const AUTH_PER_MIN = 3;
const PASSWORD = 'correct horse battery';

let sys: System;

beforeAll(async () => {
  sys = await startSystem({
    env: {
      TRUST_PROXY: 'true',
      RATE_LIMIT_IP_PER_MIN: String(IP_PER_MIN),
      RATE_LIMIT_USER_PER_MIN: String(USER_PER_MIN),
      RATE_LIMIT_AUTH_PER_MIN: String(AUTH_PER_MIN),
    },
  });
});

afterAll(async () => {
  await sys?.stop();
});

let lastIp = 0;
/** A client IP no other test uses (TEST-NET-2). */
const freshIp = () => `198.51.100.${++lastIp}`;

/** Requests as the client at `ip` (through a trusted proxy's X-Forwarded-For). */
function from(ip: string) {
  const headers = { 'X-Forwarded-For': ip };
  return {
    get: (path: string, token?: string) => sys.api.req('GET', `/api/v1${path}`, { token, headers }),
    post: (path: string, body: unknown, token?: string) => sys.api.req('POST', `/api/v1${path}`, { body, token, headers }),
    raw: (path: string, raw: string, contentType: string) =>
      sys.api.req('POST', `/api/v1${path}`, { raw, headers: { ...headers, 'Content-Type': contentType } }),
  };
}

/** Register and log in from a fresh IP (two of its AUTH_PER_MIN tokens). */
async function signupFrom(ip = freshIp()) {
  const email = `u-${randomUUID()}@example.com`;
  const c = from(ip);
  expect((await c.post('/auth/register', { email, password: PASSWORD })).status).toBe(201);
  const login = await c.post('/auth/login', { email, password: PASSWORD });
  expect(login.status).toBe(200);
  return { email, token: login.body.data.access_token as string };
}

function expectRateLimited(res: Reply, limit: number, maxRetryAfterS: number) {
  expect(res.status).toBe(429);
  expect(res.body.code).toBe(4029);
  expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
  const retryAfter = res.headers.get('retry-after');
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  expect(Number(retryAfter)).toBeLessThanOrEqual(maxRetryAfterS);
  expect(res.headers.get('ratelimit-limit')).toBe(String(limit));
  expect(res.headers.get('ratelimit-remaining')).toBe('0');
}

const scrape = async (base = sys.url, headers: Record<string, string> = {}) => {
  const res = await fetch(`${base}/metrics`, { headers });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};

describe('rate limits', () => {
  it('stops login brute force per IP: 429 code 4029 with Retry-After, even for the right password', async () => {
    const { email } = await signupFrom();
    const attacker = from(freshIp());
    for (let i = 0; i < AUTH_PER_MIN; i++) {
      const res = await attacker.post('/auth/login', { email, password: `guess-${i}-wrong` });
      expect(res.status).toBe(401);
      expect(res.headers.get('ratelimit-limit')).toBe(String(AUTH_PER_MIN));
      expect(res.headers.get('ratelimit-remaining')).toBe(String(AUTH_PER_MIN - 1 - i));
    }
    // One token every 60/AUTH_PER_MIN seconds.
    const refused = await attacker.post('/auth/login', { email, password: PASSWORD });
    expectRateLimited(refused, AUTH_PER_MIN, 60 / AUTH_PER_MIN);
    // Register shares the bucket; other routes of that IP are only under the IP limit.
    expectRateLimited(await attacker.post('/auth/register', { email: `x-${randomUUID()}@example.com`, password: PASSWORD }), AUTH_PER_MIN, 60 / AUTH_PER_MIN);
    expect([400, 401]).toContain((await attacker.post('/auth/refresh', { refresh_token: 'rt_nope' })).status);
    // The owner, from another IP, still logs in.
    expect((await from(freshIp()).post('/auth/login', { email, password: PASSWORD })).status).toBe(200);
  });

  it('limits each user on authenticated routes, across IPs', async () => {
    const { token } = await signupFrom();
    const first = from(freshIp());
    for (let i = 0; i < USER_PER_MIN; i++) {
      const res = await first.get('/auth/me', token);
      expect(res.status).toBe(200);
      // The bucket closest to empty is the user's.
      expect(res.headers.get('ratelimit-limit')).toBe(String(USER_PER_MIN));
      expect(res.headers.get('ratelimit-remaining')).toBe(String(USER_PER_MIN - 1 - i));
    }
    const elsewhere = from(freshIp());
    expectRateLimited(await elsewhere.get('/auth/me', token), USER_PER_MIN, Math.ceil(60 / USER_PER_MIN));
    expectRateLimited(await elsewhere.get('/tasks', token), USER_PER_MIN, Math.ceil(60 / USER_PER_MIN));
    // That IP is fine, and so is another user.
    const other = await signupFrom();
    expect((await elsewhere.get('/auth/me', other.token)).status).toBe(200);
    expect((await elsewhere.get('/openapi.json')).status).toBe(200);
  });

  it('limits each IP on unauthenticated routes, before authentication and routing', async () => {
    const client = from(freshIp());
    for (let i = 0; i < IP_PER_MIN; i++) {
      const res = await (i % 2 ? client.get('/no-such-route') : client.get('/tasks'));
      expect(res.status).toBe(i % 2 ? 404 : 401);
      expect(res.headers.get('ratelimit-limit')).toBe(String(IP_PER_MIN));
      expect(res.headers.get('ratelimit-remaining')).toBe(String(IP_PER_MIN - 1 - i));
    }
    expectRateLimited(await client.get('/tasks'), IP_PER_MIN, 60 / IP_PER_MIN);
    expectRateLimited(await client.get('/openapi.json'), IP_PER_MIN, 60 / IP_PER_MIN);
    // Outside /api/v1: not limited.
    const health = await fetch(`${sys.url}/healthz`, { headers: { 'X-Forwarded-For': '198.51.100.250' } });
    expect(health.status).toBe(200);
    expect(health.headers.get('ratelimit-limit')).toBeNull();
    // Other IPs are untouched.
    expect((await from(freshIp()).get('/no-such-route')).status).toBe(404);
  });

  it('without TRUST_PROXY keys on the socket address and ignores X-Forwarded-For', async () => {
    const app = createApp({
      config: { ...sys.config, TRUST_PROXY: false, RATE_LIMIT_IP_PER_MIN: 2 },
      logger: createLogger('silent'),
      orm: sys.orm,
      temporal: sys.temporal,
      tokens: new AccessTokens(sys.config.JWT_SECRET, sys.config.ACCESS_TOKEN_TTL_S),
      sockets: sys.nodes[0].gateway,
    });
    const server = await listen(createServer(app.callback()));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/no-such-route`;
      const statuses = [];
      for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) {
        statuses.push((await fetch(base, { headers: { 'X-Forwarded-For': ip } })).status);
      }
      expect(statuses).toEqual([404, 404, 429]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('request bodies', () => {
  it('answers 413 code 1001 over the route\'s limit (declared or chunked), and takes exactly the limit', async () => {
    const client = from(freshIp());
    const LIMIT = DEFAULT_BODY_BYTES; // POST /auth/refresh takes the default
    const over = await client.raw('/auth/refresh', `{"refresh_token":"${'a'.repeat(LIMIT)}"}`, 'application/json');
    expect(over.status).toBe(413);
    expect(over.body.code).toBe(1001);

    const chunk = new TextEncoder().encode('a'.repeat(16 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > LIMIT) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const chunked = await fetch(`${sys.url}/api/v1/auth/refresh`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': freshIp() },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { code: number }).code).toBe(1001);

    const prefix = '{"refresh_token":"';
    const exact = `${prefix}${'a'.repeat(LIMIT - prefix.length - 2)}"}`;
    expect(Buffer.byteLength(exact)).toBe(LIMIT);
    const atLimit = await client.raw('/auth/refresh', exact, 'application/json');
    expect(atLimit.status).not.toBe(413);
    expect([400, 401]).toContain(atLimit.status);
  });

  it('takes up to 1 MiB only where a valid input needs it, and reads no body before authentication', async () => {
    const { token } = await signupFrom();
    const ip = freshIp();
    const post = (path: string, body: string, auth?: string) => fetch(`${sys.url}/api/v1${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': ip, ...(auth ? { Authorization: `Bearer ${auth}` } : {}) },
      body,
    });
    const sized = (bytes: number) => `{"name":"${'n'.repeat(bytes - 11)}"}`;
    expect(Buffer.byteLength(sized(MAX_BODY_BYTES))).toBe(MAX_BODY_BYTES);
    // A workflow may be up to 1 MiB: the schema answers (400: the name is too long), not the size.
    expect((await post('/workflows', sized(MAX_BODY_BYTES), token)).status).toBe(400);
    expect((await post('/workflows', sized(MAX_BODY_BYTES + 1), token)).status).toBe(413);
    // A task's parameters up to PARAMETERS_BODY_BYTES; a device registration the default.
    expect((await post('/tasks', sized(PARAMETERS_BODY_BYTES), token)).status).toBe(400);
    expect((await post('/tasks', sized(PARAMETERS_BODY_BYTES + 1), token)).status).toBe(413);
    expect((await post('/users/devices', sized(DEFAULT_BODY_BYTES + 1), token)).status).toBe(413);
    // Without a valid token the body is never read: 401 whatever its size.
    expect((await post('/workflows', sized(MAX_BODY_BYTES), 'not-a-token')).status).toBe(401);
    expect((await post('/workflows', 'x'.repeat(MAX_BODY_BYTES))).status).toBe(401);
  });

  it('answers 415 code 1001 to a body that is not JSON', async () => {
    const res = await from(freshIp()).raw('/auth/login', 'email=a&password=b', 'text/plain');
    expect(res.status).toBe(415);
    expect(res.body.code).toBe(1001);
  });
});

describe('security headers', () => {
  it('are on every response: 200, 400, 401, 404, 413, 415, 429 and /metrics', async () => {
    const client = from(freshIp());
    const { token } = await signupFrom();
    const responses: [number, Headers][] = [];
    const keep = (r: Reply) => responses.push([r.status, r.headers]);
    keep(await client.get('/auth/me', token));
    keep(await client.post('/auth/register', { email: 'not an email' }));
    keep(await client.get('/auth/me'));
    keep(await client.get('/no-such-route'));
    keep(await client.raw('/auth/refresh', 'x'.repeat(MAX_BODY_BYTES + 1), 'application/json'));
    keep(await client.raw('/auth/refresh', 'hello', 'text/plain'));
    for (let i = 0; i < AUTH_PER_MIN; i++) await client.post('/auth/login', { email: 'nobody@example.com', password: 'wrong' });
    keep(await client.post('/auth/login', { email: 'nobody@example.com', password: 'wrong' }));
    const metrics = await fetch(`${sys.url}/metrics`);
    responses.push([metrics.status, metrics.headers]);
    expect(responses.map(([s]) => s)).toEqual([200, 400, 401, 404, 413, 415, 429, 200]);
    for (const [status, h] of responses) {
      expect({
        status,
        nosniff: h.get('x-content-type-options'),
        frame: h.get('x-frame-options'),
        referrer: h.get('referrer-policy'),
        csp: h.get('content-security-policy'),
      }).toEqual({ status, nosniff: 'nosniff', frame: 'DENY', referrer: 'no-referrer', csp: "default-src 'none'; frame-ancestors 'none'" });
    }
    // And the limiter's headers on every /api/v1 response.
    for (const [status, h] of responses.slice(0, -1)) {
      expect({ status, limit: h.get('ratelimit-limit') !== null, remaining: h.get('ratelimit-remaining') !== null })
        .toEqual({ status, limit: true, remaining: true });
    }
  });
});

describe('GET /metrics', () => {
  it('labels requests by route pattern, never by raw URL; unknown paths are "unmatched"', async () => {
    const client = from(freshIp());
    const { token } = await signupFrom();
    const id = randomUUID();
    expect((await client.get(`/tasks/${id}`, token)).status).toBe(404);
    expect((await client.get(`/no-such-route/${id}`)).status).toBe(404);
    // A request refused before routing is still labelled with the route it asked for.
    for (let i = 0; i < AUTH_PER_MIN; i++) await client.post('/auth/login', { email: 'nobody@example.com', password: 'wrong' });
    expect((await client.post('/auth/login', { email: 'nobody@example.com', password: 'wrong' })).status).toBe(429);

    const m = await scrape();
    expect(m.status).toBe(200);
    expect(m.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(m.text).toContain('# TYPE http_requests_total counter');
    expect(m.text).toMatch(/^http_requests_total\{method="GET",route="\/api\/v1\/tasks\/:id",status="404"\} [1-9]\d*$/m);
    expect(m.text).toMatch(/^http_requests_total\{method="GET",route="unmatched",status="404"\} [1-9]\d*$/m);
    expect(m.text).toMatch(/^http_requests_total\{method="POST",route="\/api\/v1\/auth\/login",status="429"\} [1-9]\d*$/m);
    expect(m.text).toMatch(/^http_requests_total\{method="POST",route="\/api\/v1\/auth\/login",status="401"\} [1-9]\d*$/m);
    expect(m.text).toContain('# TYPE http_request_duration_seconds histogram');
    expect(m.text).toMatch(/^http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/tasks\/:id",status="404"\} [1-9]\d*$/m);
    expect(m.text).toMatch(/^http_request_duration_seconds_bucket\{le="\+Inf",method="GET",route="\/api\/v1\/tasks\/:id",status="404"\} [1-9]\d*$/m);
    expect(m.text).not.toContain(id);
    expect(m.text).not.toContain('no-such-route');
    // Default Node process metrics.
    expect(m.text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(m.text).toMatch(/^nodejs_heap_size_used_bytes \d/m);
  });

  it('counts runs by status at scrape time, every status present', async () => {
    const { text } = await scrape();
    expect(text).toContain('# TYPE jarvis_runs gauge');
    // Other test files add and change tasks concurrently in this database: check the shape.
    for (const s of TASK_STATUSES) expect(text).toMatch(new RegExp(`^jarvis_runs\\{status="${s}"\\} \\d+$`, 'm'));
  });

  it('shows the devices and monitors connected to this node', async () => {
    const client = from(freshIp());
    const { token } = await signupFrom();
    const res = await client.post('/users/devices', { device_id: `pc-${randomUUID().slice(0, 8)}`, device_name: 'Metrics PC', os_type: 'windows' }, token);
    expect(res.status).toBe(201);
    expect((await scrape()).text).toMatch(/^jarvis_connected_devices 0$/m);
    const pc = new DeviceClient({ url: sys.wsUrl, token: res.body.data.device_token, handlers: demoHandlers, reconnect: false });
    await pc.start();
    try {
      const text = (await scrape()).text;
      expect(text).toMatch(/^jarvis_connected_devices 1$/m);
      expect(text).toMatch(/^jarvis_connected_monitors 0$/m);
    } finally {
      await pc.stop();
    }
    await eventually(async () => /^jarvis_connected_devices 0$/m.test((await scrape()).text), 10_000, 'device gone from metrics');
  });

  it('needs the bearer METRICS_TOKEN when it is set, has a registry per app, survives a failing database', async () => {
    const metricsToken = `m-${randomUUID()}`;
    const down = async () => {
      throw new Error('database down');
    };
    const brokenOrm = { em: { fork: () => ({ getConnection: () => ({ execute: down }) }) } } as unknown as Orm;
    const app = createApp({
      config: { ...sys.config, METRICS_TOKEN: metricsToken },
      logger: createLogger('silent'),
      orm: brokenOrm,
      temporal: sys.temporal,
      tokens: new AccessTokens(sys.config.JWT_SECRET, sys.config.ACCESS_TOKEN_TTL_S),
      sockets: sys.nodes[0].gateway,
      counts: () => ({ devices: 7, monitors: 3 }),
    });
    const server = await listen(createServer(app.callback()));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const none = await scrape(base);
      expect(none.status).toBe(401);
      expect(JSON.parse(none.text).code).toBe(1002);
      expect((await scrape(base, { Authorization: 'Bearer wrong' })).status).toBe(401);
      const ok = await scrape(base, { Authorization: `Bearer ${metricsToken}` });
      expect(ok.status).toBe(200);
      expect(ok.text).toMatch(/^jarvis_connected_devices 7$/m);
      expect(ok.text).toMatch(/^jarvis_connected_monitors 3$/m);
      // A fresh registry: only the scrapes of this app so far (the 401s), nothing of the system's node.
      expect(ok.text).not.toContain('/api/v1/tasks/:id');
      expect(ok.text).toMatch(/^http_requests_total\{method="GET",route="\/metrics",status="401"\} 2$/m);
      // The runs query failed: the scrape still answers, without jarvis_runs samples.
      expect(ok.text).not.toMatch(/^jarvis_runs\{/m);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

function listen(server: Server): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
