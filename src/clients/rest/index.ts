// The typed REST client: openapi-fetch over the types generated from the OpenAPI document
// (./schema.ts, `npm run openapi`), so a call's path, parameters, body and answer are checked by
// the compiler against what the server documents. `unwrap` turns an answer into its `data`, or
// an ApiError carrying the contract's code.
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema.ts';

export type { components, paths };
export type RestClient = Client<paths>;
export type Schemas = components['schemas'];

/** The paths in ./schema.ts carry this prefix: the client's base is the origin. */
const API_PREFIX = '/api/v1';

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

export interface RestClientOptions {
  /** The API's origin, or its base with the version prefix (http://h:p or http://h:p/api/v1). */
  base: string;
  /** The access token to send, read on every request (it may change after a new sign-in). */
  token?: () => string | undefined;
  /** Sent as X-Client: recorded with pause/resume/cancel. */
  client?: string;
}

/** http://h:p/api/v1 -> http://h:p */
export function originOf(base: string): string {
  const trimmed = base.replace(/\/+$/, '');
  return trimmed.endsWith(API_PREFIX) ? trimmed.slice(0, -API_PREFIX.length) : trimmed;
}

export function createRestClient(opts: RestClientOptions): RestClient {
  const client = createClient<paths>({ baseUrl: originOf(opts.base) });
  const headers: Middleware = {
    onRequest({ request }) {
      const token = opts.token?.();
      if (token && !request.headers.has('Authorization')) request.headers.set('Authorization', `Bearer ${token}`);
      if (opts.client) request.headers.set('X-Client', opts.client);
      return request;
    },
  };
  client.use(headers);
  return client;
}

interface Answer<D> {
  data?: D;
  error?: unknown;
  response: Response;
}

/**
 * The `data` of a successful answer; otherwise an ApiError with the HTTP status, the contract
 * code and message, and the bad fields of a 400 in the message. A network failure is an ApiError
 * with status 0.
 */
export async function unwrap<D extends { data: unknown }>(call: Promise<Answer<D>>, what = 'request'): Promise<D['data']> {
  let answer: Answer<D>;
  try {
    answer = await call;
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new ApiError(0, 0, `${what}: cannot reach the API: ${cause?.code ?? cause?.message ?? (err as Error).message}`, null);
  }
  const { response } = answer;
  if (response.ok && answer.data !== undefined) return answer.data.data;
  const body = (answer.error ?? null) as { code?: number; message?: string; data?: unknown } | string | null;
  const json = typeof body === 'object' ? body : null;
  const message = json?.message ?? (typeof body === 'string' && body ? body.slice(0, 200) : response.statusText);
  const fields = (json?.data as { errors?: { path: string; message: string }[] } | null | undefined)?.errors;
  const extra = fields?.length ? ` (${fields.map((e) => `${e.path}: ${e.message}`).join('; ')})` : '';
  throw new ApiError(response.status, json?.code ?? 0, `${what}: HTTP ${response.status}: ${message}${extra}`, json?.data ?? null);
}
