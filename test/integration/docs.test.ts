// The API documents itself: GET /api/v1/openapi.json is the generated document (the one in
// docs/openapi.json) and lists every route the Koa app registers; GET /docs is the page that
// renders it, allowed to run its inline script by its own CSP.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import type Router from '@koa/router';
import { AccessTokens } from '../../src/domain/tokens.ts';
import { createApp } from '../../src/http/app.ts';
import { DOCS_CSP, toOpenApiPath } from '../../src/http/openapi.ts';
import { createLogger } from '../../src/logger.ts';
import { OPENAPI_FILE } from '../../scripts/openapi.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;

beforeAll(async () => {
  sys = await startSystem();
});

afterAll(async () => {
  await sys?.stop();
});

/** Every method + path the app's routers register (`router.routes()` middleware carry `.router`). */
function registeredRoutes(): string[] {
  // The running node's app is not reachable from here: build the same app from the same deps.
  const app = createApp({
    config: sys.config,
    logger: createLogger('silent'),
    orm: sys.orm,
    temporal: sys.temporal,
    tokens: new AccessTokens(sys.config.JWT_SECRET, sys.config.ACCESS_TOKEN_TTL_S),
    sockets: sys.nodes[0].gateway,
  });
  const routers = app.middleware
    .map((m) => (m as { router?: Router }).router)
    .filter((r): r is Router => r !== undefined);
  expect(routers.length).toBeGreaterThanOrEqual(3); // health, docs, /api/v1
  return routers.flatMap((router) => router.stack.flatMap((layer) =>
    layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m.toLowerCase()} ${toOpenApiPath(String(layer.path))}`)));
}

describe('GET /api/v1/openapi.json', () => {
  it('answers the raw OpenAPI 3.1 document, the same as docs/openapi.json', async () => {
    const res = await fetch(`${sys.url}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const doc = (await res.json()) as { openapi: string; code?: number };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.code).toBeUndefined(); // not wrapped in the envelope
    expect(doc).toEqual(JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')));
  });

  it('documents exactly the routes the app registers', async () => {
    const doc = (await (await fetch(`${sys.url}/api/v1/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths)
      .flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`));
    const registered = registeredRoutes();
    expect(registered).toContain('get /api/v1/tasks/{id}');
    expect(registered).toContain('get /api/v1/openapi.json');
    expect([...new Set(registered)].sort()).toEqual([...documented].sort());
  });

  it('needs no token; an unknown path is still a 404 and a wrong method a 405, in the envelope', async () => {
    const res = await sys.api.get('/no-such-route');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe(2001);
    const post = await sys.api.post('/openapi.json', {});
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('HEAD, GET');
    expect(post.body.code).toBe(1001);
  });
});

describe('GET /docs', () => {
  it('answers a self-contained HTML page whose script loads /api/v1/openapi.json', async () => {
    const res = await fetch(`${sys.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toBe(DOCS_CSP);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
    expect(script).toContain("'/api/v1/openapi.json'");
    expect(script).toContain('fetch(SPEC_URL');
    expect(html).not.toMatch(/<script[^>]+src=|https?:\/\//);
  });

  it('leaves the strict CSP on everything else', async () => {
    const res = await fetch(`${sys.url}/api/v1/openapi.json`);
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
  });
});
