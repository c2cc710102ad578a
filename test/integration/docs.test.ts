// The API documents itself: GET /api/v1/openapi.json is the generated document (the one in
// docs/openapi.json) and lists every route the Koa app registers; GET /docs renders it with
// Scalar served by the node itself, driven here in headless Chromium: the operations show, and
// the page asks nothing of any other origin (it works offline).
//
// Needs Debian's Chromium at /usr/bin/chromium, like the monitor page tests.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import type Router from '@koa/router';
import { chromium, type Browser } from 'playwright-core';
import { AccessTokens } from '../../src/domain/tokens.ts';
import { createApp } from '../../src/http/app.ts';
import { DOCS_CSP, DOCS_SCRIPT_PATH, toOpenApiPath } from '../../src/http/openapi.ts';
import { createLogger } from '../../src/logger.ts';
import { OPENAPI_FILE } from '../../scripts/openapi.ts';
import { startSystem, type System } from '../helpers/system.ts';

const CHROMIUM = '/usr/bin/chromium';
let sys: System;
let browser: Browser | undefined;

beforeAll(async () => {
  sys = await startSystem();
}, 120_000);

afterAll(async () => {
  await browser?.close();
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
  it('answers a page that loads Scalar and the document from this node, under its own CSP', async () => {
    const res = await fetch(`${sys.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toBe(DOCS_CSP);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    expect([...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1])).toEqual([DOCS_SCRIPT_PATH]);
    expect(html).toContain('"url":"/api/v1/openapi.json"');
    expect(html).not.toMatch(/https?:\/\//);

    const script = await fetch(`${sys.url}${DOCS_SCRIPT_PATH}`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    const body = await script.text();
    expect(body).toContain('createApiReference');
    expect(body).toBe(readFileSync(new URL('../../node_modules/@scalar/api-reference/dist/browser/standalone.js', import.meta.url), 'utf8'));
  });

  it('renders every tag and the operations in Chromium, asking no other origin for anything', async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: this test drives Debian's Chromium ("sudo apt-get install chromium"; npm test does it as root)`);
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const origin = new URL(sys.url).origin;
    const elsewhere: string[] = [];
    const problems: string[] = [];
    page.on('request', (req) => {
      const url = req.url();
      if (!url.startsWith(origin) && !url.startsWith('data:') && !url.startsWith('blob:')) elsewhere.push(url);
    });
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    // A failed load shows as a console error without its URL: the responses say which (the
    // browser's own /favicon.ico probe is a 404 here, and not the page's doing).
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) problems.push(`console: ${msg.text()}`);
    });
    page.on('response', (res) => {
      if (res.status() >= 400 && new URL(res.url()).pathname !== '/favicon.ico') problems.push(`HTTP ${res.status()} ${res.url()}`);
    });
    // Everything off this node is refused, as it would be offline.
    await page.route((url) => !url.href.startsWith(origin), (route) => route.abort());
    await page.goto(`${sys.url}/docs`);

    const doc = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as {
      tags: { name: string }[]; paths: Record<string, Record<string, { summary: string; tags: string[] }>>;
    };
    const ops = Object.values(doc.paths).flatMap((item) => Object.values(item));
    const summariesOf = (tag: string) => ops.filter((op) => op.tags[0] === tag).map((op) => op.summary);
    // The first group is open: its operations are listed by name.
    await page.getByText('Log in with email and password', { exact: true }).first().waitFor({ timeout: 30_000 });
    let text = await page.locator('body').innerText();
    for (const summary of summariesOf('auth')) expect(text).toContain(summary);
    // The others are listed by tag, and open on a click.
    for (const tag of doc.tags) expect(text).toContain(tag.name);
    await page.getByRole('button', { name: 'Open Group - tasks' }).click();
    await page.getByText(summariesOf('tasks')[0], { exact: true }).first().waitFor({ timeout: 10_000 });
    text = await page.locator('body').innerText();
    for (const summary of summariesOf('tasks')) expect(text).toContain(summary);
    expect(text).toContain('Jarvis Orchestrator API');
    expect(elsewhere).toEqual([]);
    expect(problems).toEqual([]);
  }, 90_000);
  it('leaves the strict CSP on everything else', async () => {
    const res = await fetch(`${sys.url}/api/v1/openapi.json`);
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
  });
});
