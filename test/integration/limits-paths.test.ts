// Every rate limit holds for every spelling of a path the router accepts: letter case, a
// trailing slash, percent-encoded characters, and HEAD/OPTIONS. A limit keyed on one spelling
// of a path let `POST /API/V1/auth/login` guess passwords without bound.
// The system trusts X-Forwarded-For (TRUST_PROXY=true) so each test is its own client IP.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startSystem, type System } from '../helpers/system.ts';

const IP_PER_MIN = 40;
const USER_PER_MIN = 8;
const AUTH_PER_MIN = 4;
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
const freshIp = () => `198.51.100.${++lastIp}`;

/** One raw request as the client at `ip`: the path goes on the wire exactly as written. */
async function send(ip: string, method: string, path: string, opts: { body?: unknown; token?: string } = {}) {
  const headers: Record<string, string> = { 'X-Forwarded-For': ip };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${sys.url}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  return { status: res.status, code: text ? (JSON.parse(text) as { code?: number }).code : undefined };
}

async function account() {
  const ip = freshIp();
  const email = `u-${randomUUID()}@example.com`;
  expect((await send(ip, 'POST', '/api/v1/auth/register', { body: { email, password: PASSWORD } })).status).toBe(201);
  const res = await fetch(`${sys.url}/api/v1/auth/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': ip },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  return { email, token: ((await res.json()) as { data: { access_token: string } }).data.access_token };
}

describe('rate limits hold for every spelling of a path', () => {
  it('login and register: every spelling shares one bucket per IP; no spelling checks a password past it', async () => {
    const { email } = await account();
    const ip = freshIp();
    const logins = ['/api/v1/auth/login', '/API/V1/auth/login', '/api/v1/auth/login/', '/Api/V1/Auth/LOGIN/'];
    // Each spelling reaches the password check (401) and spends from one bucket.
    for (const path of logins.slice(0, AUTH_PER_MIN)) {
      expect(await send(ip, 'POST', path, { body: { email, password: 'wrong-guess' } })).toEqual({ status: 401, code: 1002 });
    }
    // Bucket empty: every spelling of login and of register is refused, even the right password.
    const registers = ['/api/v1/auth/register', '/API/V1/AUTH/REGISTER', '/api/v1/auth/register/'];
    for (const path of [...logins, ...registers]) {
      expect(await send(ip, 'POST', path, { body: { email, password: PASSWORD } })).toEqual({ status: 429, code: 4029 });
    }
    // From a fresh IP, every other spelling: percent-encoded letters, an encoded slash, HEAD,
    // OPTIONS, GET. Whether the router decodes a spelling to the route or not, the password is
    // checked (401) at most AUTH_PER_MIN times in all, and never once the bucket is empty.
    const other = freshIp();
    const spellings = [
      ['POST', '/api/v1/auth/%6Cogin'], ['POST', '/api/v1/auth%2Flogin'], ['POST', '/api/v1/%61uth/login'],
      ['POST', '/%61pi/v1/auth/login'], ['HEAD', '/api/v1/auth/login'], ['OPTIONS', '/API/V1/auth/login/'],
      ['GET', '/api/v1/auth/login'], ['POST', '/api/v1/auth/LOGIN%2F'],
    ] as const;
    const statuses: number[] = [];
    const unexpected: string[] = [];
    for (let round = 0; round < 2; round++) {
      for (const [method, path] of spellings) {
        const { status } = await send(other, method, path, method === 'POST' ? { body: { email, password: 'wrong-guess' } } : {});
        statuses.push(status);
        // OPTIONS answers which methods exist (200); nothing else may succeed.
        const allowed = method === 'OPTIONS' ? [200, 204, 429] : [401, 404, 405, 429];
        if (!allowed.includes(status)) unexpected.push(`${method} ${path}: ${status}`);
      }
    }
    expect(unexpected).toEqual([]);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(AUTH_PER_MIN);
    const checksLeft = AUTH_PER_MIN - statuses.filter((s) => s === 401).length;
    // Whatever is left of that IP's bucket, and no more, still reaches the password check.
    for (let i = 0; i < checksLeft; i++) {
      expect((await send(other, 'POST', '/API/v1/auth/login/', { body: { email, password: 'wrong-guess' } })).status).toBe(401);
    }
    expect((await send(other, 'POST', '/api/v1/auth/login', { body: { email, password: PASSWORD } })).status).toBe(429);
  });

  it('per IP: every spelling, encoded path, HEAD and OPTIONS count, and all are refused once the bucket is empty', async () => {
    const ip = freshIp();
    const variants: [string, string][] = [
      ['GET', '/api/v1/tasks'], ['GET', '/API/V1/tasks'], ['GET', '/api/v1/tasks/'], ['GET', '/api/v1/%74asks'],
      ['HEAD', '/api/v1/tasks'], ['OPTIONS', '/api/v1/tasks'], ['GET', '/Api/V1/no-such-route'], ['POST', '/API/v1/auth/refresh/'],
    ];
    for (let i = 0; i < IP_PER_MIN; i++) {
      const [method, path] = variants[i % variants.length];
      const res = await send(ip, method, path, method === 'POST' ? { body: { refresh_token: 'rt_nope' } } : {});
      expect(res.status).not.toBe(429);
    }
    for (const [method, path] of variants) {
      expect({ method, path, status: (await send(ip, method, path)).status }).toEqual({ method, path, status: 429 });
    }
  });

  it('per user: every spelling of an authenticated route and HEAD spend the user bucket, from any IP', async () => {
    const { token } = await account();
    const spellings: [string, string][] = [
      ['GET', '/api/v1/auth/me'], ['GET', '/API/V1/auth/me'], ['GET', '/api/v1/auth/me/'], ['GET', '/api/v1/TASKS'],
      ['HEAD', '/api/v1/tasks'], ['GET', '/Api/v1/Users/Profile/'],
    ];
    for (let i = 0; i < USER_PER_MIN; i++) {
      const [method, path] = spellings[i % spellings.length];
      expect({ path, status: (await send(freshIp(), method, path, { token })).status }).toEqual({ path, status: 200 });
    }
    for (const [method, path] of spellings) {
      expect({ method, path, status: (await send(freshIp(), method, path, { token })).status }).toEqual({ method, path, status: 429 });
    }
  });
});
