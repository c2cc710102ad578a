// The OpenAPI document is generated from the route specs: every route is in it with the schemas
// that validate its input and describe its answer, each example in it is valid for the zod schema
// it illustrates, both linters pass it, and docs/openapi.json and the generated client types are
// that document (not stale copies). The /docs page itself is driven in Chromium by
// test/integration/docs.test.ts.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_BODY_BYTES, MAX_BODY_BYTES, PARAMETERS_BODY_BYTES } from '../../src/http/route.ts';
import { ErrorCode } from '../../src/errors.ts';
import {
  buildOpenApi, DOCS_CSP, DOCS_HTML, DOCS_SCRIPT_PATH, OPENAPI_PATH, packageVersion, toOpenApiPath,
} from '../../src/http/openapi.ts';
import { presentDevice, presentStepProgress, presentTask, presentUser } from '../../src/http/presenters.ts';
import { API_PREFIX, checkResponse, defineRoute, idParams, ResponseSchemaError, type RouteSpec } from '../../src/http/route.ts';
import { clientTypes, CLIENT_TYPES_FILE, offlineDocument, offlineRoutes, OPENAPI_FILE } from '../../scripts/openapi.ts';

type Media = { schema: Record<string, any>; examples?: Record<string, { value: any }> };
type Op = {
  operationId: string;
  description?: string;
  tags: string[];
  summary: string;
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; required: boolean; schema: Record<string, any> }[];
  requestBody?: { required: boolean; content: Record<string, Media> };
  responses: Record<string, { description: string; content?: Record<string, Media> }>;
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
const STATIC = ['get /healthz', 'get /readyz', 'get /metrics', `get ${OPENAPI_PATH}`, 'get /docs', `get ${DOCS_SCRIPT_PATH}`];
const opOf = (r: RouteSpec) => doc.paths[toOpenApiPath(API_PREFIX + r.path)]?.[r.method];
const operations = () =>
  Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1.0 with the package version and a pointer to the WebSocket protocol', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe(packageVersion());
    expect(doc.info.description).toContain('docs/PROTOCOL.md');
    expect(doc['x-websocket']).toMatchObject({ path: '/ws', spec: 'docs/PROTOCOL.md' });
    // Relative to the node that serves it, unless PUBLIC_URL says where the API is.
    expect(doc.servers).toEqual([{ url: '/', description: expect.any(String) }]);
    expect((buildOpenApi(routes, { version: '1.2.3', serverUrl: 'https://jarvis.example' }) as Doc).servers)
      .toEqual([{ url: 'https://jarvis.example', description: expect.any(String) }]);
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
      for (const status of [r.success.status, ...(r.success.also ?? [])]) {
        const content = op.responses[String(status)].content!;
        if (r.success.data === 'binary') {
          expect(Object.keys(content)).toEqual(['application/octet-stream']);
          continue;
        }
        const { allOf } = content['application/json'].schema;
        expect(allOf[0]).toEqual({ $ref: '#/components/schemas/Envelope' });
        expect(allOf[1].required).toEqual(['data']);
        expect(allOf[1].properties.data).toBeDefined();
      }
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
    // Each route documents its own body limit.
    expect(post.responses['413'].description).toContain(`${PARAMETERS_BODY_BYTES / 1024} KiB`);
    expect(doc.paths['/api/v1/workflows'].post.responses['413'].description).toContain(`${MAX_BODY_BYTES / 1024 / 1024} MiB`);
    expect(doc.paths['/api/v1/auth/login'].post.responses['413'].description).toContain(`${DEFAULT_BODY_BYTES / 1024} KiB`);
    // The upload's body is multipart, with the file part the handler reads.
    const upload = doc.paths['/api/v1/files/upload'].post.requestBody!;
    expect(upload.required).toBe(true);
    expect(Object.keys(upload.content)).toEqual(['multipart/form-data']);
    expect(upload.content['multipart/form-data'].schema.required).toEqual(['file']);
  });

  it('documents query parameters one by one, with their input-side defaults', () => {
    const params = doc.paths['/api/v1/tasks'].get.parameters ?? [];
    expect(params.every((p) => p.in === 'query' && p.required === false)).toBe(true);
    expect(params.map((p) => p.name)).toEqual(expect.arrayContaining(['page', 'page_size', 'status', 'device_id', 'from', 'to']));
    expect(params.find((p) => p.name === 'page_size')?.schema).toMatchObject({ type: 'integer', default: 20, maximum: 100 });
    expect(params.find((p) => p.name === 'status')?.schema.enum).toContain('running');
  });

  it('puts bearer security on user routes and an explicit empty one on the public ones', () => {
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    for (const r of routes) {
      const op = opOf(r);
      if (r.auth === 'user') {
        expect(op.security).toEqual([{ bearerAuth: [] }]);
        expect(op.responses['401']).toBeDefined();
      } else {
        expect(op.security).toEqual([]);
      }
    }
    expect(doc.paths['/api/v1/auth/login'].post.security).toEqual([]);
    for (const { path, op } of operations()) expect({ path, hasSecurity: Array.isArray(op.security) }).toEqual({ path, hasSecurity: true });
  });

  it('has an example of every request body and success response, each valid for the zod schema it illustrates', () => {
    for (const r of routes) {
      const where = `${r.method.toUpperCase()} ${r.path}`;
      const op = opOf(r);
      if (r.body) {
        const examples = Object.values(op.requestBody!.content['application/json'].examples ?? {});
        expect({ where, requestExamples: examples.length }).toEqual({ where, requestExamples: 1 });
        const parsed = r.body.safeParse(examples[0].value);
        expect({ where, request: parsed.success ? 'valid' : parsed.error.issues }).toEqual({ where, request: 'valid' });
      }
      if (r.success.data === 'binary') continue;
      for (const status of [r.success.status, ...(r.success.also ?? [])]) {
        const examples = Object.values(op.responses[String(status)].content!['application/json'].examples ?? {});
        expect({ where, responseExamples: examples.length }).toEqual({ where, responseExamples: 1 });
        const { code, message, data, request_id } = examples[0].value;
        expect({ code, message, request_id: typeof request_id }).toEqual({
          code: 0, message: status === 202 ? 'accepted' : 'success', request_id: 'string',
        });
        const parsed = r.success.data.safeParse(data);
        expect({ where, response: parsed.success ? 'valid' : parsed.error.issues }).toEqual({ where, response: 'valid' });
      }
    }
  });

  it('gives each error response an example with the contract code of its status', () => {
    const codeOf: Record<string, number> = { 400: 1001, 401: 1002, 404: 2001, 409: 3001, 413: 1001, 415: 1001, 429: 4029, 500: 5000, 503: 5000 };
    for (const { path, op } of operations()) {
      for (const [status, res] of Object.entries(op.responses)) {
        if (!(status in codeOf) || res.content?.['application/json']?.schema.$ref !== '#/components/schemas/Error') continue;
        const example = Object.values(res.content['application/json'].examples ?? {})[0]?.value;
        expect({ path, status, code: example?.code }).toEqual({ path, status, code: codeOf[status] });
      }
    }
  });

  it('describes the envelope and the contract error codes', () => {
    const { Envelope, Error: Err } = doc.components.schemas;
    for (const s of [Envelope, Err]) expect(s.required).toEqual(['code', 'message', 'data', 'request_id']);
    expect(Err.properties.code.enum).toEqual([1001, 1002, 1003, 2001, 3001, 4029, 5000]);
    expect([...Err.properties.code.enum].sort()).toEqual(Object.values(ErrorCode).sort());
    expect(Err.properties.data.properties.errors.items).toEqual({ $ref: '#/components/schemas/FieldError' });
    expect(doc.components.schemas.FieldError.required).toEqual(['path', 'message']);
    // /readyz says which dependency failed: the Error shape with data {postgres, temporal}.
    const notReady = doc.paths['/readyz'].get.responses['503'].content!['application/json'].schema;
    expect(notReady.required).toEqual(Err.required);
    expect(notReady.properties.code).toEqual({ const: 5000 });
    expect(Object.keys(notReady.properties.data.properties)).toEqual(['postgres', 'temporal']);
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

  it('is what the generated client types (src/clients/rest/schema.ts) were made from', async () => {
    const fresh = await clientTypes(offlineDocument());
    const onDisk = existsSync(CLIENT_TYPES_FILE) ? readFileSync(CLIENT_TYPES_FILE, 'utf8') : '(missing)';
    expect(onDisk === fresh ? 'up to date' : 'src/clients/rest/schema.ts is stale: run `npm run openapi`').toBe('up to date');
    // The types carry the documented answers, e.g. a task's status enum.
    expect(fresh).toContain('"/api/v1/tasks/{id}"');
    expect(fresh).toMatch(/status: "pending" \| "running" \| "paused" \| "completed" \| "failed" \| "cancelled"/);
  });
});

describe('the linters on the document', () => {
  const ROOT = resolve(import.meta.dirname, '..', '..');
  const bin = (pkg: string, file: string) => join(ROOT, 'node_modules', pkg, file);
  let dir: string;
  let file: string;

  const run = (args: string[]) => {
    // No usage reports or update checks from the linters: the test must not depend on the network.
    const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
    const res = spawnSync(process.execPath, args, { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
    return { status: res.status, output: `${res.stdout}\n${res.stderr}` };
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'openapi-lint-'));
    file = join(dir, 'openapi.json');
    writeFileSync(file, JSON.stringify(offlineDocument()));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('@redocly/cli lint (recommended) finds no error', () => {
    const { status, output } = run([bin('@redocly/cli', 'bin/cli.js'), 'lint', '--config', join(ROOT, 'redocly.yaml'), '--format', 'summary', file]);
    // Warnings are printed (the summary) but only errors fail.
    expect({ status, errors: output.split('\n').filter((l) => /^error /.test(l.trim())) }).toEqual({ status: 0, errors: [] });
    expect(output).toContain('Your API description is valid');
  }, 120_000);

  it('@stoplight/spectral-cli lint (spectral:oas) finds no error', () => {
    const { status, output } = run([bin('@stoplight/spectral-cli', 'dist/index.js'), 'lint', '--ruleset', join(ROOT, '.spectral.yaml'),
      '--fail-severity', 'error', '--format', 'text', file]);
    expect({ status, errors: output.split('\n').filter((l) => / error /.test(l)) }).toEqual({ status: 0, errors: [] });
  }, 120_000);

  it('would fail on an error (a $ref that resolves nowhere)', () => {
    const broken = structuredClone(offlineDocument()) as Doc;
    (broken.paths['/api/v1/tasks'].get.responses['200'] as any).content['application/json'].schema = { $ref: '#/components/schemas/Nope' };
    const bad = join(dir, 'broken.json');
    writeFileSync(bad, JSON.stringify(broken));
    expect(run([bin('@redocly/cli', 'bin/cli.js'), 'lint', '--config', join(ROOT, 'redocly.yaml'), '--format', 'summary', bad]).status).not.toBe(0);
    expect(run([bin('@stoplight/spectral-cli', 'dist/index.js'), 'lint', '--ruleset', join(ROOT, '.spectral.yaml'),
      '--fail-severity', 'error', bad]).status).not.toBe(0);
  }, 120_000);
});

describe('the response check', () => {
  const at = new Date('2026-03-02T09:15:00.000Z');
  const byPath = (method: string, path: string) => routes.find((r) => r.method === method && r.path === path)!;

  it('accepts what the presenters write', () => {
    const user = { id: '0b8e4a53-8c1e-4f4e-9a53-3c2b7a1d2e10', email: 'ada@example.com', name: null, createdAt: at };
    expect(() => checkResponse(byPath('get', '/auth/me'), 200, { data: { user: presentUser(user as never) } })).not.toThrow();
    const device = {
      id: '6f1d2c3b-4a5e-4d7f-8a9b-0c1d2e3f4a5b', deviceId: 'pc', deviceName: 'PC', capabilities: ['x'], isOnline: false, isBusy: false, createdAt: at,
    };
    expect(() => checkResponse(byPath('get', '/users/devices/:id'), 200, { data: { device: presentDevice(device as never) } })).not.toThrow();
    const task = {
      id: '3c5e7a9b-2d4f-4a6c-8e0b-1d3f5a7c9e2b', workflowId: device.id, workflowVersionId: device.id, deviceId: device.id,
      status: 'failed', priority: 'high', parameters: {}, progress: 50, lastSeq: 4, createdAt: at, temporalWorkflowId: 'task-x',
      error: { code: 'STEP_FAILED', message: 'boom', step_id: 's1' },
    };
    const steps = [{ nodeId: 's1', nodeType: 'demo.fail', attempt: 1, key: 'k', status: 'failed', error: { code: 'X', message: 'y' }, startedAt: at }];
    const names = { workflows: new Map([[device.id, 'Flow']]), devices: new Map<string, string>() };
    const detail = {
      ...presentTask(task as never, names, { steps: steps as never, temporalUiUrl: 'http://localhost:8233' }),
      queue_position: null,
      step_progress: presentStepProgress(task as never, steps as never),
    };
    expect(() => checkResponse(byPath('get', '/tasks/:id'), 200, { data: { task: detail } })).not.toThrow();
  });

  it('refuses a field the schema does not have, a missing one and a wrong type, naming the route and the field', () => {
    const route = byPath('get', '/auth/me');
    const user = { id: '0b8e4a53-8c1e-4f4e-9a53-3c2b7a1d2e10', email: 'ada@example.com', name: 'Ada', created_at: at.toISOString() };
    expect(() => checkResponse(route, 200, { data: { user: { ...user, password_hash: 'x' } } }))
      .toThrow(new ResponseSchemaError('GET /auth/me answered 200 with data that does not match its schema: user: Unrecognized key: "password_hash"'));
    const { email: _dropped, ...noEmail } = user;
    expect(() => checkResponse(route, 200, { data: { user: noEmail } })).toThrow(/user\.email/);
    expect(() => checkResponse(route, 200, { data: { user: { ...user, created_at: 17 } } })).toThrow(/user\.created_at/);
  });

  it('refuses a success status the spec does not document', () => {
    const route = byPath('post', '/workflows');
    expect(() => checkResponse(route, 200, { data: {} })).toThrow('POST /workflows answered 200, which its spec does not document');
    // POST /tasks documents 200 beside 201: the same task again for the same idempotency key.
    expect(byPath('post', '/tasks').success.also).toEqual([200]);
  });

  it('leaves error answers and raw downloads alone', () => {
    expect(() => checkResponse(byPath('get', '/auth/me'), 401, { code: 1002, data: null })).not.toThrow();
    expect(() => checkResponse(byPath('get', '/files/:id/content'), 200, 'bytes')).not.toThrow();
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

describe('the /docs page', () => {
  it('loads Scalar from this node and the document from this node: no CDN, and a CSP of its own origin', () => {
    expect(DOCS_HTML).not.toMatch(/https?:\/\//);
    expect([...DOCS_HTML.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1])).toEqual([DOCS_SCRIPT_PATH]);
    expect(DOCS_HTML).toContain(`"url":"${OPENAPI_PATH}"`);
    expect(DOCS_HTML).toContain('"withDefaultFonts":false');
    expect(DOCS_CSP).toContain("default-src 'self'");
    expect(DOCS_CSP).not.toMatch(/https?:|\*/);
    expect(existsSync(resolve(import.meta.dirname, '..', '..', 'node_modules/@scalar/api-reference/dist/browser/standalone.js'))).toBe(true);
  });
});
