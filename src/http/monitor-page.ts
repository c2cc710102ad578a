// GET /monitor: the web monitor, one page (inline CSS and JS, no framework, no external
// requests) that signs in over REST, lists devices and tasks, starts runs and watches one live
// over /ws (resuming with after_seq after a drop). The page is monitor-page.html, read once at
// boot, so it stays editable as HTML. It speaks the WebSocket protocol through the server's
// own codec, bundled for it at /monitor/protocol.js (monitor-script.ts).
//
// A plain middleware, not a Router: /monitor is a page for people, not part of the REST API the
// OpenAPI document describes (which lists every route the app's routers register).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context, Next } from 'koa';
import { MONITOR_SCRIPT_PATH, monitorScript } from './monitor-script.ts';

export const MONITOR_PATH = '/monitor';

// Inline script and style, REST and WebSocket to its own origin (ws:/wss: for the socket), nothing else.
export const MONITOR_CSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
  "connect-src 'self' ws: wss:; img-src 'self' data: blob:; base-uri 'none'; frame-ancestors 'none'";

export const MONITOR_HTML = readFileSync(join(import.meta.dirname, 'monitor-page.html'), 'utf8');

/** Serves the page at GET (and HEAD) /monitor and its codec script; everything else passes through. */
export function monitorPage() {
  return async (ctx: Context, next: Next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    if (ctx.path === MONITOR_SCRIPT_PATH) {
      (ctx as { _matchedRoute?: string })._matchedRoute = MONITOR_SCRIPT_PATH;
      ctx.set('Cache-Control', 'no-cache');
      ctx.type = 'text/javascript; charset=utf-8';
      ctx.body = await monitorScript();
      return;
    }
    if (ctx.path !== MONITOR_PATH && ctx.path !== `${MONITOR_PATH}/`) return next();
    // The label /metrics counts these requests under (as a router's match would set it).
    (ctx as { _matchedRoute?: string })._matchedRoute = MONITOR_PATH;
    ctx.set('Content-Security-Policy', MONITOR_CSP);
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = MONITOR_HTML;
  };
}
