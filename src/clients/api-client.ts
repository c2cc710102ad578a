// A small client of the REST API (`/api/v1`) for scripts and tools: the envelope unwrapped,
// errors as ApiError, and a fresh sign-in when the access token expires (given credentials).
import { randomUUID } from 'node:crypto';

export class ApiError extends Error {
  readonly status: number;
  readonly code: number;
  readonly data: unknown;
  constructor(status: number, code: number, message: string, data: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.data = data;
  }
}

export interface ApiClientOptions {
  /** Base URL with the version prefix, e.g. http://127.0.0.1:3000/api/v1 */
  base: string;
  token?: string;
  /** Signs in with these when there is no token, and again when the token expires. */
  email?: string;
  password?: string;
  /** Sent as X-Client: recorded with pause/resume/cancel. */
  client?: string;
}

export class ApiClient {
  readonly base: string;
  token?: string;
  private readonly opts: ApiClientOptions;

  constructor(opts: ApiClientOptions) {
    this.opts = opts;
    this.base = opts.base.replace(/\/+$/, '');
    this.token = opts.token;
  }

  /** The WebSocket URL of the same node: http://h:p/api/v1 -> ws://h:p/ws */
  get wsUrl(): string {
    return wsUrlFor(this.base);
  }

  /** Signs in with the configured credentials; returns the access token. */
  async login(email = this.opts.email, password = this.opts.password): Promise<string> {
    if (!email || !password) throw new Error('no credentials to sign in with (email and password)');
    const data = await this.request<{ access_token: string }>('POST', '/auth/login', { email, password }, { auth: false });
    this.token = data.access_token;
    return this.token;
  }

  /** Registers a new user and signs in as them. */
  async registerThrowaway(prefix = 'sim'): Promise<{ email: string; password: string; token: string }> {
    const email = `${prefix}-${randomUUID().slice(0, 12)}@example.com`;
    const password = `pw-${randomUUID()}`;
    await this.request('POST', '/auth/register', { email, password, name: `${prefix} user` }, { auth: false });
    this.opts.email = email;
    this.opts.password = password;
    return { email, password, token: await this.login(email, password) };
  }

  /** Makes sure there is a token: the given one, or a sign-in with the credentials. */
  async ensureToken(): Promise<string> {
    if (this.token) return this.token;
    return this.login();
  }

  get<T = any>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  post<T = any>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('POST', path, body);
  }
  del<T = any>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  async request<T = any>(method: string, path: string, body?: unknown, o: { auth?: boolean; retried?: boolean } = {}): Promise<T> {
    const headers: Record<string, string> = { 'X-Client': this.opts.client ?? 'jarvis-cli' };
    if (o.auth !== false && this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(0, 0, `cannot reach ${this.base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, null);
    }
    const text = await res.text();
    let json: { code?: number; message?: string; data?: unknown } | null = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (res.status === 401 && o.auth !== false && !o.retried && this.opts.email && this.opts.password) {
      await this.login();
      return this.request<T>(method, path, body, { ...o, retried: true });
    }
    if (!res.ok || !json || (json.code !== undefined && json.code !== 0)) {
      const message = json?.message ?? (text.slice(0, 200) || res.statusText);
      const details = (json?.data as { errors?: { path: string; message: string }[] } | undefined)?.errors;
      const extra = details?.length ? ` (${details.map((e) => `${e.path}: ${e.message}`).join('; ')})` : '';
      throw new ApiError(res.status, json?.code ?? 0, `${method} ${path}: HTTP ${res.status}: ${message}${extra}`, json?.data ?? null);
    }
    return json.data as T;
  }
}

export function wsUrlFor(apiBase: string): string {
  const u = new URL(apiBase);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = '/ws';
  u.search = '';
  return u.toString();
}
