// A small REST client for tests, and factories for the usual fixtures.
import { randomUUID } from 'node:crypto';

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

  get<T = any>(path: string, token?: string) { return this.req<T>('GET', `/api/v1${path}`, { token }); }
  post<T = any>(path: string, body: unknown, token?: string) { return this.req<T>('POST', `/api/v1${path}`, { body, token }); }
  put<T = any>(path: string, body: unknown, token?: string) { return this.req<T>('PUT', `/api/v1${path}`, { body, token }); }
  del<T = any>(path: string, token?: string) { return this.req<T>('DELETE', `/api/v1${path}`, { token }); }
}

export async function signup(api: Api): Promise<{ token: string; userId: string; email: string }> {
  const email = `u-${randomUUID()}@example.com`;
  const password = 'correct horse battery';
  const reg = await api.post('/auth/register', { email, password, name: 'Test User' });
  if (reg.status !== 201) throw new Error(`register failed: ${JSON.stringify(reg.body)}`);
  const login = await api.post('/auth/login', { email, password });
  if (login.status !== 200) throw new Error(`login failed: ${JSON.stringify(login.body)}`);
  return { token: login.body.data.access_token, userId: login.body.data.user.id, email };
}

export async function addDevice(api: Api, token: string): Promise<{ id: string; deviceToken: string }> {
  const res = await api.post('/users/devices', { device_id: `pc-${randomUUID().slice(0, 8)}`, device_name: 'Test PC', os_type: 'windows' }, token);
  if (res.status !== 201) throw new Error(`device failed: ${JSON.stringify(res.body)}`);
  return { id: res.body.data.device.id, deviceToken: res.body.data.device_token };
}

/** A linear definition: start -> steps... -> end. */
export function linear(steps: { type: string; params?: Record<string, unknown>; name?: string; retry?: unknown; timeoutMs?: number; heartbeatTimeoutMs?: number }[]) {
  const nodes = [
    { id: 'start', type: 'start' },
    ...steps.map((s, i) => ({ id: `s${i + 1}`, ...s })),
    { id: 'end', type: 'end' },
  ];
  const edges = nodes.slice(1).map((n, i) => ({ from: nodes[i].id, to: n.id }));
  return { nodes, edges };
}

export async function addWorkflow(api: Api, token: string, definition: unknown, name = 'Test workflow'): Promise<string> {
  const res = await api.post('/workflows', { name, definition }, token);
  if (res.status !== 201) throw new Error(`workflow failed: ${JSON.stringify(res.body)}`);
  return res.body.data.workflow.id;
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
