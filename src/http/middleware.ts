// Koa middleware: error handler (first), request id, security headers, access logs, JSON body.
import { randomUUID } from 'node:crypto';
import { bodyParser } from '@koa/bodyparser';
import type { Context, Next } from 'koa';
import type { Logger } from '../logger.ts';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import { AppError, ErrorCode, errors } from '../errors.ts';
import { jsonShapeProblem } from '../validation.ts';

export interface State {
  requestId: string;
}

/** The contract's envelope for every response. */
export function envelope(ctx: Context, data: unknown, status = 200, message = 'success'): void {
  ctx.status = status;
  ctx.body = { code: 0, message, data, request_id: ctx.state.requestId };
}

export function errorHandler(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw errors.notFound('route');
      if (ctx.status === 405 && ctx.body === undefined) {
        throw new AppError(405, ErrorCode.InvalidParams, `method ${ctx.method} not allowed on ${ctx.path}`);
      }
    } catch (err) {
      const e = toAppError(err);
      ctx.status = e.status;
      for (const [k, v] of Object.entries(e.headers)) ctx.set(k, v);
      if (e.status >= 500) {
        // The message of a 5xx names what failed inside (Temporal's or PostgreSQL's own text):
        // it goes to the log under the request id, and the client gets that id and a plain
        // sentence, never internal detail.
        logger.error({ err, requestId: ctx.state.requestId, path: ctx.path }, 'request failed');
        ctx.body = { code: e.code, message: PLAIN_5XX[e.status] ?? PLAIN_5XX[500], data: null, request_id: ctx.state.requestId };
        return;
      }
      ctx.body = { code: e.code, message: e.message, data: e.data, request_id: ctx.state.requestId };
    }
  };
}

const PLAIN_5XX: Record<number, string> = {
  500: 'internal server error; quote the request_id when you report it',
  503: 'a service this request needs is unavailable; retry later',
};

function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const status = (err as { status?: number }).status;
  const expose = (err as { expose?: boolean }).expose;
  if (typeof status === 'number' && status >= 400 && status < 500 && expose) {
    const code = status === 401 ? ErrorCode.Unauthenticated : status === 404 ? ErrorCode.NotFound : ErrorCode.InvalidParams;
    return new AppError(status, code, (err as Error).message);
  }
  // PostgreSQL down or restarting: the client may try again shortly; nothing is wrong with the request.
  if (isDatabaseUnavailable(err)) return new AppError(503, ErrorCode.ServerError, 'PostgreSQL is unreachable', null, { 'Retry-After': '5' });
  return new AppError(500, ErrorCode.ServerError, 'internal server error');
}

export function requestId() {
  return async (ctx: Context, next: Next) => {
    const given = ctx.get('X-Request-ID');
    ctx.state.requestId = /^[A-Za-z0-9._-]{1,100}$/.test(given) ? given : randomUUID();
    ctx.set('X-Request-ID', ctx.state.requestId);
    await next();
  };
}

export function securityHeaders() {
  return async (ctx: Context, next: Next) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    if (!ctx.path.startsWith('/docs') && !ctx.path.startsWith('/monitor')) {
      ctx.set('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
    }
    await next();
  };
}

export function accessLog(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    const start = process.hrtime.bigint();
    try {
      await next();
    } finally {
      if (logger.isLevelEnabled('info')) {
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        // The query string may carry a token (?token=): log the path only.
        logger.info({ requestId: ctx.state.requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms }, 'request');
      }
    }
  };
}

const BODY_METHODS = ['POST', 'PUT', 'PATCH'];

/**
 * A reader of one route's JSON body. @koa/bodyparser (co-body) reads the text: a declared length
 * over the limit is refused before a byte is read, the size is counted while reading, gzip is
 * inflated within it. The text's shape is checked against the input caps before it is parsed
 * (jsonShapeProblem: a hostile body costs a scan, not a parse and a walk). Around it, the
 * contract's answers: 415 for a body of another content type, 413 over the limit, 400 for bad
 * JSON, JSON that is not an object or array, or a shape over the caps, all with code 1001. No
 * body reads as {}.
 */
export function jsonBodyReader(limitBytes: number): (ctx: Context) => Promise<unknown> {
  const read = bodyParser({
    // Read as text: the parse is ours, after the shape check.
    enableTypes: ['text'],
    extendTypes: { text: ['application/json'] },
    parsedMethods: BODY_METHODS,
    textLimit: limitBytes,
    onError(err) {
      const status = (err as { status?: number }).status;
      if (status === 413) throw errors.payloadTooLarge(`request body over ${limitBytes} bytes`);
      if (status === 415) throw errors.unsupportedMediaType();
      throw errors.invalid('request body could not be read');
    },
  });
  return async (ctx: Context) => {
    if (!BODY_METHODS.includes(ctx.method)) return {};
    if (!ctx.request.length && !ctx.get('Transfer-Encoding')) return {};
    if (!ctx.is('application/json')) throw errors.unsupportedMediaType();
    await read(ctx, async () => undefined);
    const text = typeof ctx.request.body === 'string' ? ctx.request.body : '';
    if (!text.trim()) return {};
    const shape = jsonShapeProblem(text);
    if (shape) throw errors.invalid('invalid body', [shape]);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw errors.invalid('request body is not valid JSON');
    }
    if (body === null || typeof body !== 'object') throw errors.invalid('request body must be a JSON object or array');
    return body;
  };
}
