// Cross-origin access for the configured web origins (CORS_ORIGINS): the PC client's webview
// (e.g. tauri://localhost) and the web app. Credentials here are bearer tokens in the
// Authorization header, never cookies, so responses do not allow credentials: a browser sends
// no cookie and the API reads none. An origin not in the list gets no CORS headers, and the
// browser keeps the response from its page; requests without an Origin (native apps, scripts)
// are unaffected.
import cors from '@koa/cors';
import type { Context, Middleware } from 'koa';

/** What a page may send: the token, the body's type, and our own request headers. */
const ALLOW_HEADERS = ['Authorization', 'Content-Type', 'X-Request-ID', 'X-Client'];
/** What a page may read besides the simple headers: the request id, rate limits, downloads. */
const EXPOSE_HEADERS = ['X-Request-ID', 'Retry-After', 'Content-Disposition', 'ETag'];
const ALLOW_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
/** How long a browser may reuse a preflight's answer, in seconds. */
const PREFLIGHT_MAX_AGE_S = 600;

export function corsFor(origins: readonly string[]): Middleware {
  const allowed = new Set(origins);
  return cors({
    // The request's own origin when listed (one origin per response, as the standard wants);
    // anything else: no CORS headers at all.
    origin: (ctx: Context) => (allowed.has(ctx.get('Origin')) ? ctx.get('Origin') : ''),
    credentials: false,
    allowMethods: ALLOW_METHODS,
    allowHeaders: ALLOW_HEADERS,
    exposeHeaders: EXPOSE_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE_S,
  });
}
