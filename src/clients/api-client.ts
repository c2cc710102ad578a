// The REST client of scripts and tools: the typed client (./rest/, generated from the OpenAPI
// document) with a session around it: sign-in with credentials, and a fresh sign-in when the
// access token expires.
import { randomUUID } from 'node:crypto';
import { ApiError, createRestClient, unwrap, type RestClient } from './rest/index.ts';

export { ApiError };

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
  /** Typed calls: `api.call((rest) => rest.GET('/api/v1/tasks/{id}', { params: { path: { id } } }))`. */
  readonly rest: RestClient;
  private readonly opts: ApiClientOptions;

  constructor(opts: ApiClientOptions) {
    this.opts = opts;
    this.base = opts.base.replace(/\/+$/, '');
    this.token = opts.token;
    this.rest = createRestClient({ base: this.base, token: () => this.token, client: opts.client ?? 'jarvis-cli' });
  }

  /** The WebSocket URL of the same node: http://h:p/api/v1 -> ws://h:p/ws */
  get wsUrl(): string {
    return wsUrlFor(this.base);
  }

  /** Signs in with the configured credentials; returns the access token. */
  async login(email = this.opts.email, password = this.opts.password): Promise<string> {
    if (!email || !password) throw new Error('no credentials to sign in with (email and password)');
    const data = await unwrap(this.rest.POST('/api/v1/auth/login', { body: { email, password } }), 'POST /auth/login');
    this.token = data.access_token;
    return this.token;
  }

  /** Registers a new user and signs in as them. */
  async registerThrowaway(prefix = 'sim'): Promise<{ email: string; password: string; token: string }> {
    const email = `${prefix}-${randomUUID().slice(0, 12)}@example.com`;
    const password = `pw-${randomUUID()}`;
    await unwrap(this.rest.POST('/api/v1/auth/register', { body: { email, password, name: `${prefix} user` } }), 'POST /auth/register');
    this.opts.email = email;
    this.opts.password = password;
    return { email, password, token: await this.login(email, password) };
  }

  /** Makes sure there is a token: the given one, or a sign-in with the credentials. */
  async ensureToken(): Promise<string> {
    if (this.token) return this.token;
    return this.login();
  }

  /**
   * One typed call, unwrapped to its `data`; on a 401 with credentials at hand, signs in again
   * and repeats the call once.
   */
  async call<D extends { data: unknown }>(
    request: (rest: RestClient) => Promise<{ data?: D; error?: unknown; response: Response }>,
    what?: string,
  ): Promise<D['data']> {
    try {
      return await unwrap(request(this.rest), what);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401 || !this.opts.email || !this.opts.password) throw err;
      await this.login();
      return unwrap(request(this.rest), what);
    }
  }

  // Untyped calls by path under the version prefix, for callers that build paths at run time.
  get<T = any>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  post<T = any>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('POST', path, body);
  }
  del<T = any>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  async request<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    // The path is only known at run time: the typed client's checks cannot apply here.
    const untyped = this.rest.request as unknown as (method: string, url: string, init: { body?: unknown }) =>
      Promise<{ data?: { data: T }; error?: unknown; response: Response }>;
    return this.call(() => untyped(method.toLowerCase(), `/api/v1${path}`, body === undefined ? {} : { body }), `${method} ${path}`);
  }
}

export function wsUrlFor(apiBase: string): string {
  const u = new URL(apiBase);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = '/ws';
  u.search = '';
  return u.toString();
}
