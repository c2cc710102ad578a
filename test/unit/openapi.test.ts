// The OpenAPI document is generated from the route specs: every route is in it with the schemas
// that validate its input, docs/openapi.json is that document (not a stale copy), and the /docs
// page renders it (run against a minimal DOM stand-in: there is no browser on this machine).
import { describe, it, expect } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import vm from 'node:vm';
import { z } from 'zod';
import { MAX_BODY_BYTES } from '../../src/http/app.ts';
import { ErrorCode } from '../../src/errors.ts';
import {
  buildOpenApi, DOCS_CSP, DOCS_HTML, OPENAPI_PATH, packageVersion, toOpenApiPath,
} from '../../src/http/openapi.ts';
import { API_PREFIX, defineRoute, idParams, type RouteSpec } from '../../src/http/route.ts';
import { offlineDocument, offlineRoutes, OPENAPI_FILE } from '../../scripts/openapi.ts';

type Op = {
  operationId: string;
  tags: string[];
  summary: string;
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; required: boolean; schema: Record<string, any> }[];
  requestBody?: { required: boolean; content: Record<string, { schema: Record<string, any> }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: Record<string, any> }> }>;
};
type Doc = {
  openapi: string;
  info: { title: string; version: string; description: string };
  servers?: { url: string }[];
  tags: { name: string; description?: string }[];
  paths: Record<string, Record<string, Op>>;
  components: { schemas: Record<string, any>; securitySchemes: Record<string, any> };
  'x-websocket': { path: string; spec: string };
};

const routes = offlineRoutes();
const doc = buildOpenApi(routes, { version: packageVersion() }) as Doc;
const STATIC = ['get /healthz', 'get /readyz', 'get /metrics', `get ${OPENAPI_PATH}`, 'get /docs'];
const opOf = (r: RouteSpec) => doc.paths[toOpenApiPath(API_PREFIX + r.path)]?.[r.method];
const operations = () =>
  Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1.0 with the package version and a pointer to the WebSocket protocol', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe(packageVersion());
    expect(doc.info.description).toContain('docs/PROTOCOL.md');
    expect(doc['x-websocket']).toMatchObject({ path: '/ws', spec: 'docs/PROTOCOL.md' });
    expect(doc.servers).toBeUndefined();
    expect((buildOpenApi(routes, { version: '1.2.3', serverUrl: 'https://jarvis.example' }) as Doc).servers)
      .toEqual([{ url: 'https://jarvis.example' }]);
  });

  it('has every route spec at its path and method, documented, and nothing else but the static routes', () => {
    expect(routes.length).toBeGreaterThan(20);
    for (const r of routes) {
      const where = `${r.method.toUpperCase()} ${r.path}`;
      const op = opOf(r);
      expect({ where, documented: op !== undefined }).toEqual({ where, documented: true });
      expect(op.summary).toBe(r.summary);
      expect(r.summary.trim().length).toBeGreaterThan(0);
      expect(op.tags).toEqual([r.tag]);
      // A new tag gets a description in openapi.ts.
      expect({ tag: r.tag, described: Boolean(doc.tags.find((t) => t.name === r.tag)?.description) })
        .toEqual({ tag: r.tag, described: true });
      expect(op.responses[String(r.success.status)].content?.['application/json'].schema)
        .toEqual({ $ref: '#/components/schemas/Envelope' });
      for (const status of r.errors ?? []) {
        expect(op.responses[String(status)].content?.['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
      }
    }
    const expected = [...routes.map((r) => `${r.method} ${toOpenApiPath(API_PREFIX + r.path)}`), ...STATIC].sort();
    expect(operations().map(({ method, path }) => `${method} ${path}`).sort()).toEqual(expected);
    const ids = operations().map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('converts Koa paths and documents each path parameter, /tasks/{id} as a uuid', () => {
    expect(toOpenApiPath('/tasks/:id/events')).toBe('/tasks/{id}/events');
    const get = doc.paths['/api/v1/tasks/{id}'].get;
    expect(get.parameters).toContainEqual(expect.objectContaining({
      name: 'id', in: 'path', required: true, schema: expect.objectContaining({ type: 'string', format: 'uuid' }),
    }));
    for (const { path, op } of operations()) {
      const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      const inPath = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      expect({ path, params: inPath.sort() }).toEqual({ path, params: names.sort() });
    }
  });

  it('documents request bodies from the zod schemas that validate them', () => {
    const post = doc.paths['/api/v1/tasks'].post;
    expect(post.requestBody?.required).toBe(true);
    const schema = post.requestBody!.content['application/json'].schema;
    expect(schema.type).toBe('object');
    expect(schema.required).toEqual(expect.arrayContaining(['workflow_id', 'device_id']));
    expect(schema.required).not.toContain('priority');
    expect(schema.properties.priority.enum).toEqual(['high', 'medium', 'low']);
    expect(schema.additionalProperties).toBe(false); // .strict()
    expect(schema.$schema).toBeUndefined();
    // No required field: the body may be left out (it is read as {}).
    expect(doc.paths['/api/v1/tasks/{id}/pause'].post.requestBody?.required).toBe(false);
    // Bodies add the statuses the JSON body parser answers before the route runs.
    expect(Object.keys(post.responses)).toEqual(expect.arrayContaining(['201', '400', '401', '404', '409', '413', '415', '500', '503']));
    expect(post.responses['413'].description).toContain(`${MAX_BODY_BYTES / 1024 / 1024} MiB`);
  });

  it('documents query parameters one by one, with their input-side defaults', () => {
    const params = doc.paths['/api/v1/tasks'].get.parameters ?? [];
    expect(params.every((p) => p.in === 'query' && p.required === false)).toBe(true);
    expect(params.map((p) => p.name)).toEqual(expect.arrayContaining(['page', 'page_size', 'status', 'device_id', 'from', 'to']));
    expect(params.find((p) => p.name === 'page_size')?.schema).toMatchObject({ type: 'integer', default: 20, maximum: 100 });
    expect(params.find((p) => p.name === 'status')?.schema.enum).toContain('running');
  });

  it('puts bearer security on user routes and none on the public ones', () => {
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    for (const r of routes) {
      const op = opOf(r);
      if (r.auth === 'user') {
        expect(op.security).toEqual([{ bearerAuth: [] }]);
        expect(op.responses['401']).toBeDefined();
      } else {
        expect(op.security).toBeUndefined();
      }
    }
    expect(doc.paths['/api/v1/auth/login'].post.security).toBeUndefined();
    expect(doc.paths['/api/v1/auth/register'].post.security).toBeUndefined();
  });

  it('describes the envelope and the contract error codes', () => {
    const { Envelope, Error: Err } = doc.components.schemas;
    for (const s of [Envelope, Err]) expect(s.required).toEqual(['code', 'message', 'data', 'request_id']);
    expect(Err.properties.code.enum).toEqual([1001, 1002, 1003, 2001, 3001, 4029, 5000]);
    expect([...Err.properties.code.enum].sort()).toEqual(Object.values(ErrorCode).sort());
    expect(Err.properties.data.properties.errors.items).toEqual({ $ref: '#/components/schemas/FieldError' });
    expect(doc.components.schemas.FieldError.required).toEqual(['path', 'message']);
    expect(doc.paths['/readyz'].get.responses['503'].content?.['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
    // Every $ref resolves.
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]);
    for (const ref of refs) {
      expect(ref.startsWith('#/components/schemas/')).toBe(true);
      expect(doc.components.schemas[ref.split('/').pop()!]).toBeDefined();
    }
  });

  it('is what docs/openapi.json holds', () => {
    const fresh = JSON.stringify(offlineDocument());
    const onDisk = existsSync(OPENAPI_FILE) ? JSON.stringify(JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'))) : '(missing)';
    expect(onDisk === fresh ? 'up to date' : 'docs/openapi.json is stale: run `npm run openapi`').toBe('up to date');
  });
});

describe('buildOpenApi on odd route specs', () => {
  const spec = (over: Partial<RouteSpec>): RouteSpec => defineRoute({
    method: 'get', path: '/things', tag: 'things', auth: 'none', summary: 'Things',
    success: { status: 200, description: 'Things', data: z.object({ things: z.array(z.string()) }) }, async handler() {}, ...over,
  });

  it('refuses a route defined twice, and a query schema that is not an object', () => {
    expect(() => buildOpenApi([spec({}), spec({})], { version: '0' })).toThrow(/defined twice/);
    expect(() => buildOpenApi([spec({ query: z.string() })], { version: '0' })).toThrow(/must be a z.object/);
  });

  it('documents a path parameter that has no schema as a required string', () => {
    const d = buildOpenApi([spec({ path: '/things/:name/parts/:id', params: idParams })], { version: '0' }) as Doc;
    const params = d.paths['/api/v1/things/{name}/parts/{id}'].get.parameters!;
    expect(params.map((p) => [p.name, p.in, p.required, p.schema.type])).toEqual([
      ['id', 'path', true, 'string'], ['name', 'path', true, 'string'],
    ]);
  });

  it('moves named sub-schemas to components.schemas', () => {
    const Part = z.object({ sku: z.string() }).meta({ id: 'OpenApiTestPart' });
    const d = buildOpenApi([spec({ method: 'post', body: z.object({ parts: z.array(Part) }) })], { version: '0' }) as Doc;
    const schema = d.paths['/api/v1/things'].post.requestBody!.content['application/json'].schema;
    expect(schema.properties.parts.items).toEqual({ $ref: '#/components/schemas/OpenApiTestPart' });
    expect(d.components.schemas.OpenApiTestPart).toMatchObject({ type: 'object', required: ['sku'] });
    expect(JSON.stringify(d)).not.toContain('$defs');
  });
});

// ---- the /docs page, run against a DOM stand-in ----

class FakeElement {
  tagName: string;
  attrs: Record<string, string> = {};
  children: (FakeElement | string)[] = [];
  open = false;
  constructor(tag: string) {
    this.tagName = tag.toUpperCase();
  }
  setAttribute(k: string, v: unknown) { this.attrs[k] = String(v); }
  append(...xs: (FakeElement | string)[]) { this.children.push(...xs); }
  replaceChildren(...xs: (FakeElement | string)[]) { this.children = [...xs]; }
  scrollIntoView() {}
  get textContent(): string {
    return this.children.map((c) => (typeof c === 'string' ? c : c.textContent)).join('');
  }
  set textContent(v: string) { this.children = [String(v)]; }
  all(tag: string): FakeElement[] {
    const kids = this.children.filter((c): c is FakeElement => typeof c !== 'string');
    return kids.flatMap((c) => [...(c.tagName === tag ? [c] : []), ...c.all(tag)]);
  }
}

async function renderDocsPage(fetchImpl: (url: string) => Promise<unknown>) {
  const script = /<script>([\s\S]*?)<\/script>/.exec(DOCS_HTML)?.[1];
  if (!script) throw new Error('no inline script in DOCS_HTML');
  const byId: Record<string, FakeElement> = {};
  for (const id of ['title', 'meta', 'intro', 'toc', 'ops']) byId[id] = new FakeElement('div');
  const requested: string[] = [];
  const document = {
    title: '',
    getElementById: (id: string) => byId[id] ?? null,
    createElement: (tag: string) => new FakeElement(tag),
  };
  vm.runInNewContext(script, {
    document,
    location: { hash: '' },
    fetch: (url: string) => {
      requested.push(url);
      return fetchImpl(url);
    },
  });
  await new Promise((r) => setTimeout(r, 20));
  return { byId, document, requested };
}

describe('the /docs page', () => {
  it('is self-contained: no external script, style or link, and a CSP of its own origin', () => {
    expect(DOCS_HTML).not.toMatch(/https?:\/\//);
    expect(DOCS_HTML).not.toMatch(/<script[^>]+src=/);
    expect(DOCS_HTML).not.toMatch(/<link/);
    expect(DOCS_CSP).toContain("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'");
    expect(DOCS_CSP).not.toMatch(/https?:|\*/);
  });

  it('fetches the document and renders every operation, grouped by tag', async () => {
    const { byId, document, requested } = await renderDocsPage(async () => ({ ok: true, json: async () => doc }));
    expect(requested).toEqual([OPENAPI_PATH]);
    expect(document.title).toBe(`Jarvis Orchestrator API ${packageVersion()}`);
    const ops = byId.ops.all('DETAILS');
    expect(ops).toHaveLength(operations().length);
    expect(ops.map((d) => d.attrs.id).sort()).toEqual(operations().map(({ op }) => op.operationId).sort());
    const sections = byId.ops.all('H2').map((h) => h.textContent);
    expect(sections).toEqual([...doc.tags.map((t) => t.name), 'schemas', 'websocket /ws']);
    const text = byId.ops.textContent;
    expect(text).toContain('/api/v1/tasks/{id}/events');
    expect(text).toContain('after_seq');
    expect(text).toContain('"workflow_id"'); // the request body schema, pretty-printed
    expect(byId.ops.all('SPAN').filter((s) => s.attrs.class === 'lock')).toHaveLength(routes.filter((r) => r.auth === 'user').length);
  });

  it('says so when the document cannot be loaded', async () => {
    const { byId } = await renderDocsPage(async () => ({ ok: false, status: 503, json: async () => ({}) }));
    expect(byId.ops.textContent).toContain(`Could not load ${OPENAPI_PATH}: HTTP 503`);
  });
});
