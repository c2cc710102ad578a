// A route is data: method, path, schemas, auth and handler. The router mounts it
// (validate -> authenticate -> handler), and the OpenAPI document is generated from the same
// schemas that validate requests and describe responses.
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { parse } from '../validation.ts';
import { jsonBodyReader } from './middleware.ts';
import type { RouteLimit } from './rate-limit.ts';

/** Prefix of the REST routes (here so app.ts and openapi.ts share it without a cycle). */
export const API_PREFIX = '/api/v1';

/**
 * The largest JSON body a route takes unless it says otherwise. Parsing and validating cost grow
 * with the body, so each route takes only what its largest valid input needs.
 */
export const DEFAULT_BODY_BYTES = 64 * 1024;
/** Routes that carry a run's parameters (POST /tasks, /schedules). */
export const PARAMETERS_BODY_BYTES = 256 * 1024;
/** The largest JSON body any route takes (a workflow definition may be 512 KiB of JSON). */
export const MAX_BODY_BYTES = 1024 * 1024;

export type Auth = 'none' | 'user';

export interface RouteInput<B, Q, P> {
  body: B;
  query: Q;
  params: P;
}

export interface Success {
  status: number;
  /** Other success statuses with the same `data` (e.g. 200 for an idempotent replay of a 201). */
  also?: number[];
  description: string;
  /** The envelope's `data` (schemas in src/http/schemas/), or 'binary' for a raw download. */
  data: z.ZodType | 'binary';
}

export interface RouteSpec<B = unknown, Q = unknown, P = unknown> {
  method: 'get' | 'post' | 'put' | 'delete' | 'patch';
  /** Koa path, e.g. `/tasks/:id`. */
  path: string;
  summary: string;
  tag: string;
  auth: Auth;
  /** A rate limit of its own, besides the per-IP and per-user ones (see rate-limit.ts). */
  limit?: RouteLimit;
  body?: z.ZodType<B>;
  /** Largest JSON body, in bytes (DEFAULT_BODY_BYTES unless set; at most MAX_BODY_BYTES). */
  maxBodyBytes?: number;
  query?: z.ZodType<Q>;
  params?: z.ZodType<P>;
  /** A multipart/form-data upload (read by the handler, not parsed here): the name of its file part. */
  multipartFile?: string;
  /** Success status and what it returns (described in OpenAPI, checked outside production). */
  success: Success;
  /** Other statuses this route may answer with. */
  errors?: number[];
  handler(ctx: Context, input: RouteInput<B, Q, P>): Promise<void>;
}

export function defineRoute<B = undefined, Q = undefined, P = undefined>(spec: RouteSpec<B, Q, P>): RouteSpec {
  return spec as unknown as RouteSpec;
}

export interface Guards {
  /** Sets ctx.state.userId (and the rest of the caller's identity) or throws 401. */
  authenticate(ctx: Context): Promise<void>;
  /** Spends from the route's own rate limit bucket or throws 429. */
  limit(ctx: Context, limit: RouteLimit): void;
}

/**
 * Outside production every success response is parsed with its route's `data` schema: a
 * presenter that drifts from the documented shape fails the request (a 500, logged) and so the
 * tests. Production skips the check: it costs a parse of every response body.
 */
export const CHECK_RESPONSES = process.env.NODE_ENV !== 'production';

export class ResponseSchemaError extends Error {}

/** Throws when a success answer of `r` has a status or `data` its spec does not document. */
export function checkResponse(r: RouteSpec, status: number, body: unknown): void {
  if (status < 200 || status > 299) return;
  if (status !== r.success.status && !r.success.also?.includes(status)) {
    throw new ResponseSchemaError(`${r.method.toUpperCase()} ${r.path} answered ${status}, which its spec does not document`);
  }
  if (r.success.data === 'binary') return;
  const data = (body as { data?: unknown } | null)?.data;
  const res = r.success.data.safeParse(data);
  if (!res.success) {
    const issues = res.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ResponseSchemaError(`${r.method.toUpperCase()} ${r.path} answered ${status} with data that does not match its schema: ${issues}`);
  }
}

export function mount(router: Router, routes: RouteSpec[], guards: Guards, checkResponses = CHECK_RESPONSES): void {
  for (const r of routes) {
    // The body is read only here: after the route's rate limit and the caller's authentication,
    // with the route's own size limit, so no one makes the node read a body it would not take.
    const readBody = r.body ? jsonBodyReader(bodyLimit(r)) : undefined;
    router[r.method](r.path, async (ctx: Context) => {
      if (r.limit) guards.limit(ctx, r.limit);
      if (r.auth === 'user') await guards.authenticate(ctx);
      const input = {
        params: r.params ? parse(r.params, ctx.params, 'path parameter') : undefined,
        query: r.query ? parse(r.query, ctx.query, 'query') : undefined,
        body: r.body && readBody ? parse(r.body, await readBody(ctx), 'body') : undefined,
      };
      await r.handler(ctx, input);
      if (checkResponses) checkResponse(r, ctx.status, ctx.body);
    });
  }
}

/** The route's JSON body limit in bytes. */
export function bodyLimit(r: Pick<RouteSpec, 'maxBodyBytes'>): number {
  return Math.min(r.maxBodyBytes ?? DEFAULT_BODY_BYTES, MAX_BODY_BYTES);
}

/** Path parameter `:id` as a UUID (a bad id is a 400, never a database error). */
export const idParams = z.object({ id: z.uuid({ message: 'must be a UUID' }) });
