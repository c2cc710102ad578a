// A small REST client for tests, and factories for the usual fixtures. `req`/`get`/`post`... send
// anything and hand back the raw reply (the tests of bad input need that); `typed()` is the
// client generated from the OpenAPI document, which the fixtures use.
import { randomUUID } from 'node:crypto';
import { createRestClient, unwrap, type RestClient } from '../../src/clients/rest/index.ts';

export interface Reply<T = any> {
  status: number;
  body: { code: number; message: string; data: T; request_id: string };
  headers: Headers;
}

export class Api {
  readonly base: string;
  constructor(base: string) {
    this.base = base;
  }

  async req<T = any>(method: string, path: string, opts: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string } = {}): Promise<Reply<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    let body: string | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['Content-Type'] ??= 'application/json';
    }
    const res = await fetch(`${this.base}${path}`, { method, headers, body });
    const text = await res.text();
    let json: any = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = { raw: text }; }
    return { status: res.status, body: json, headers: res.headers };
  }

  /** The typed client (src/clients/rest/), signed in with `token` when given. */
  typed(token?: string): RestClient {
    return createRestClient({ base: this.base, token: () => token });
  }

  get<T = any>(path: string, token?: string) { return this.req<T>('GET', `/api/v1${path}`, { token }); }
  post<T = any>(path: string, body: unknown, token?: string) { return this.req<T>('POST', `/api/v1${path}`, { body, token }); }
  put<T = any>(path: string, body: unknown, token?: string) { return this.req<T>('PUT', `/api/v1${path}`, { body, token }); }
  del<T = any>(path: string, token?: string) { return this.req<T>('DELETE', `/api/v1${path}`, { token }); }
}

export async function signup(api: Api): Promise<{ token: string; userId: string; email: string }> {
  const email = `u-${randomUUID()}@example.com`;
  const password = 'correct horse battery';
  const rest = api.typed();
  await unwrap(rest.POST('/api/v1/auth/register', { body: { email, password, name: 'Test User' } }), 'register');
  const login = await unwrap(rest.POST('/api/v1/auth/login', { body: { email, password } }), 'login');
  return { token: login.access_token, userId: login.user.id, email };
}

export async function addDevice(api: Api, token: string): Promise<{ id: string; deviceToken: string }> {
  const data = await unwrap(api.typed(token).POST('/api/v1/users/devices', {
    body: { device_id: `pc-${randomUUID().slice(0, 8)}`, device_name: 'Test PC', os_type: 'windows' },
  }), 'add device');
  return { id: data.device.id, deviceToken: data.device_token };
}

/** A linear definition: start -> steps... -> end. */
export function linear(steps: { type: string; params?: Record<string, unknown>; name?: string; retry?: unknown; timeoutMs?: number; heartbeatTimeoutMs?: number; onInterrupt?: 'retry' | 'fail' | 'ask' }[]) {
  const nodes = [
    { id: 'start', type: 'start' },
    ...steps.map((s, i) => ({ id: `s${i + 1}`, ...s })),
    { id: 'end', type: 'end' },
  ];
  const edges = nodes.slice(1).map((n, i) => ({ from: nodes[i].id, to: n.id }));
  return { nodes, edges };
}

export async function addWorkflow(api: Api, token: string, definition: unknown, name = 'Test workflow'): Promise<string> {
  const data = await unwrap(api.typed(token).POST('/api/v1/workflows', {
    body: { name, definition: definition as Record<string, unknown> },
  }), 'add workflow');
  return data.workflow.id;
}

/** Polls until `check` returns a truthy value or the time runs out. */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
