// The OpenAPI 3.1 document, generated from the RouteSpecs: the zod schemas that validate requests
// are the ones documented (z.toJSONSchema, input side). Served at GET /api/v1/openapi.json and
// rendered by GET /docs (a self-contained page: no CDN, works offline). `npm run openapi` writes
// the same document to docs/openapi.json.
import { readFileSync } from 'node:fs';
import Router from '@koa/router';
import { z } from 'zod';
import { ErrorCode } from '../errors.ts';
import { METRICS_PATH } from './metrics.ts';
import { API_PREFIX, type RouteSpec } from './route.ts';

type Schema = Record<string, unknown>;

export interface OpenApiInfo {
  version: string;
  /** Base URL of the server (PUBLIC_URL); without it, paths are relative to where the doc is served. */
  serverUrl?: string;
}

export const OPENAPI_PATH = `${API_PREFIX}/openapi.json`;
export const DOCS_PATH = '/docs';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** What each error status means in this API, and which contract code it carries. */
const ERROR_STATUS: Record<number, string> = {
  400: 'Invalid parameters (code 1001); `data.errors` lists each bad field as `{path, message}`',
  401: 'Missing, invalid, expired or revoked access token (code 1002)',
  403: 'Forbidden (code 1003)',
  404: 'Not found, or not yours (code 2001)',
  409: 'Conflicts with the current state, e.g. the run is not in a state that allows it (code 3001), or a unique value is already taken (code 1001)',
  413: 'Request body over the 1 MiB limit (code 1001)',
  415: 'Content-Type is not application/json (code 1001)',
  429: 'Too many requests (code 4029): over the per-IP, per-user or login/register limit; wait the `Retry-After` seconds',
  500: 'Internal server error (code 5000)',
  503: 'A dependency (Temporal or PostgreSQL) is unavailable; retry later (code 5000)',
};

// Each route's tag needs a description here (test/unit/openapi.test.ts checks it).
const TAGS: Record<string, string> = {
  auth: 'Accounts and access tokens',
  users: 'The signed-in user',
  devices: 'PCs bound to the account; they run the steps over the WebSocket',
  workflows: 'Automation definitions (each update of the definition is a new immutable version)',
  tasks: 'Runs of a workflow on a device: start, watch, steer',
  schedules: 'Recurring runs of a workflow on a device (cron or interval), as Temporal schedules',
  logs: 'Logs reported by the user and by devices, per task or not; filters and cursor paging',
  files: 'Uploaded files: multipart upload checked by content, size limit, per-user quota, download',
  stats: 'Dashboard numbers for the mobile app: today and the last 7 days',
  system: 'Health, metrics and this documentation',
};

const DESCRIPTION = [
  'REST API of the Jarvis Orchestrator: it runs people\'s PC automations as Temporal workflows.',
  'Every response of `/api/v1` (but this document) and of `/healthz`, `/readyz` is the envelope `{code, message, data, request_id}`: ' +
    '`code` 0 on success (schema `Envelope`), a contract error code otherwise (schema `Error`). ' +
    '`request_id` is also in the `X-Request-ID` header; send `X-Request-ID` to choose it.',
  'Authenticate with `Authorization: Bearer <access_token>` (from `POST /api/v1/auth/login`). ' +
    'Query and body objects are strict: an unknown field is a 400.',
  'Devices and monitors use the WebSocket at `/ws` (see `x-websocket`): its protocol is specified in docs/PROTOCOL.md.',
].join('\n\n');

const COMPONENT_SCHEMAS: Record<string, Schema> = {
  Envelope: {
    type: 'object',
    description: 'A successful response: `data` is described in each response.',
    required: ['code', 'message', 'data', 'request_id'],
    properties: {
      code: { type: 'integer', const: 0 },
      message: { type: 'string', examples: ['success', 'accepted'] },
      data: { description: 'The payload' },
      request_id: { type: 'string', description: 'Also in the X-Request-ID header' },
    },
  },
  Error: {
    type: 'object',
    description: 'A failed response.',
    required: ['code', 'message', 'data', 'request_id'],
    properties: {
      code: {
        type: 'integer',
        enum: Object.values(ErrorCode).sort((a, b) => a - b),
        description: Object.entries(ErrorCode).map(([name, code]) => `${code} ${name}`).join(', '),
      },
      message: { type: 'string' },
      data: {
        type: ['object', 'null'],
        description: 'Details: `errors[]` for invalid parameters, otherwise what the message refers to, or null',
        properties: { errors: { type: 'array', items: ref('FieldError') } },
      },
      request_id: { type: 'string', description: 'Also in the X-Request-ID header' },
    },
  },
  FieldError: {
    type: 'object',
    required: ['path', 'message'],
    properties: {
      path: { type: 'string', description: 'Dotted path of the field, `(root)` for the whole input' },
      message: { type: 'string' },
    },
  },
};

/** `/tasks/:id` -> `/tasks/{id}` */
export function toOpenApiPath(koaPath: string): string {
  return koaPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

const pathParamNames = (koaPath: string) => [...koaPath.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);

/** `post /tasks/:id/pause` -> `postTasksByIdPause` */
function operationId(method: string, koaPath: string): string {
  const words = koaPath.split('/').filter(Boolean).map((seg) => {
    const name = seg.startsWith(':') ? `by_${seg.slice(1)}` : seg;
    return name.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join('');
  });
  return method + words.join('');
}

class Builder {
  readonly schemas: Record<string, Schema> = structuredClone(COMPONENT_SCHEMAS);

  /** JSON Schema (2020-12, the dialect of OpenAPI 3.1) of what a client sends. */
  jsonSchema(schema: z.ZodType, where: string): Schema {
    const out = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Schema;
    delete out.$schema;
    const defs = out.$defs as Record<string, Schema> | undefined;
    delete out.$defs;
    if (!defs) return out;
    // Named or recursive sub-schemas: `#/$defs/X` would resolve against the OpenAPI document
    // root, so they move to components.schemas.
    const moved = (v: unknown) => JSON.parse(JSON.stringify(v).replaceAll('"#/$defs/', '"#/components/schemas/')) as Schema;
    for (const [name, def] of Object.entries(defs)) {
      const next = moved(def);
      const had = this.schemas[name];
      if (had && JSON.stringify(had) !== JSON.stringify(next)) {
        throw new Error(`openapi: ${where} defines schema ${name}, which differs from another of that name`);
      }
      this.schemas[name] = next;
    }
    return moved(out);
  }

  /** One parameter per property of an object schema. */
  parameters(schema: z.ZodType, where: 'query' | 'path', route: string): Schema[] {
    const json = this.jsonSchema(schema, `${where} of ${route}`);
    const props = json.properties as Record<string, Schema> | undefined;
    if (json.type !== 'object' || !props) throw new Error(`openapi: the ${where} schema of ${route} must be a z.object`);
    const required = new Set((json.required as string[] | undefined) ?? []);
    return Object.entries(props).map(([name, s]) => ({
      name,
      in: where,
      required: where === 'path' || required.has(name),
      ...(typeof s.description === 'string' ? { description: s.description } : {}),
      schema: s,
    }));
  }

  operation(r: RouteSpec): Schema {
    const where = `${r.method.toUpperCase()} ${r.path}`;
    const parameters: Schema[] = [];
    if (r.params) parameters.push(...this.parameters(r.params, 'path', where));
    for (const name of pathParamNames(r.path)) {
      // A path parameter without a schema is still a required string.
      if (!parameters.some((p) => p.name === name)) parameters.push({ name, in: 'path', required: true, schema: { type: 'string' } });
    }
    if (r.query) parameters.push(...this.parameters(r.query, 'query', where));

    const op: Schema = {
      operationId: operationId(r.method, r.path),
      tags: [r.tag],
      summary: r.summary,
    };
    if (r.auth === 'user') op.security = [{ bearerAuth: [] }];
    if (parameters.length) op.parameters = parameters;
    if (r.body) {
      const schema = this.jsonSchema(r.body, `body of ${where}`);
      // An absent body is read as `{}`: it is required only when some field is.
      const required = Array.isArray(schema.required) && schema.required.length > 0;
      op.requestBody = { required, content: { 'application/json': { schema } } };
    }

    const statuses = new Set(r.errors ?? []);
    if (r.auth === 'user') statuses.add(401);
    if (r.body) {
      // jsonBody() answers these for any body, before the route runs.
      statuses.add(413);
      statuses.add(415);
    }
    // The rate limiter (src/http/rate-limit.ts) guards every /api/v1 route.
    statuses.add(429);
    statuses.add(500);
    const responses: Record<string, unknown> = {
      [String(r.success.status)]: {
        description: `data: ${r.success.description}`,
        content: { 'application/json': { schema: ref('Envelope') } },
      },
    };
    for (const status of [...statuses].sort((a, b) => a - b)) responses[String(status)] = errorResponse(status);
    op.responses = responses;
    return op;
  }
}

function errorResponse(status: number): Schema {
  const res: Schema = {
    description: ERROR_STATUS[status] ?? `Error (HTTP ${status})`,
    content: { 'application/json': { schema: ref('Error') } },
  };
  if (status === 429) {
    res.headers = {
      'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer', minimum: 1 } },
      'RateLimit-Limit': { description: 'Requests per minute of the bucket closest to empty', schema: { type: 'integer' } },
      'RateLimit-Remaining': { description: 'Requests left in that bucket', schema: { type: 'integer' } },
    };
  }
  return res;
}

/** Routes outside the RouteSpecs: health, metrics and the documentation itself. */
function staticPaths(): Record<string, Record<string, Schema>> {
  const envelope = (description: string) => ({ description, content: { 'application/json': { schema: ref('Envelope') } } });
  return {
    '/healthz': {
      get: {
        operationId: 'getHealthz', tags: ['system'], summary: 'Liveness: the process is up',
        responses: { 200: envelope('data: {status: "ok"}') },
      },
    },
    '/readyz': {
      get: {
        operationId: 'getReadyz', tags: ['system'], summary: 'Readiness: PostgreSQL and Temporal answer',
        responses: {
          200: envelope('data: {postgres: true, temporal: true}'),
          503: {
            description: 'Not ready (code 5000); data: {postgres, temporal} says which one failed',
            content: { 'application/json': { schema: ref('Error') } },
          },
        },
      },
    },
    [METRICS_PATH]: {
      get: {
        operationId: 'getMetrics', tags: ['system'],
        summary: 'Prometheus metrics of this API node',
        description: 'Prometheus text format (not the envelope): HTTP requests by route pattern, runs by status, ' +
          'connected devices and monitors, Node process metrics. Needs `Authorization: Bearer <METRICS_TOKEN>` when that setting is set.',
        responses: {
          200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } },
          401: { description: 'METRICS_TOKEN is set and the bearer token is missing or wrong (code 1002)', content: { 'application/json': { schema: ref('Error') } } },
        },
      },
    },
    [OPENAPI_PATH]: {
      get: {
        operationId: 'getOpenApi', tags: ['system'], summary: 'This OpenAPI 3.1 document (not wrapped in the envelope)',
        responses: {
          200: { description: 'The OpenAPI document', content: { 'application/json': { schema: { type: 'object' } } } },
          429: errorResponse(429),
        },
      },
    },
    [DOCS_PATH]: {
      get: {
        operationId: 'getDocs', tags: ['system'], summary: 'This documentation as a web page',
        responses: { 200: { description: 'An HTML page that renders the OpenAPI document', content: { 'text/html': { schema: { type: 'string' } } } } },
      },
    },
  };
}

/** The OpenAPI 3.1 document of `routes` (mounted under API_PREFIX) plus the static routes. */
export function buildOpenApi(routes: RouteSpec[], info: OpenApiInfo): Schema {
  const b = new Builder();
  const paths: Record<string, Record<string, Schema>> = {};
  const tags: string[] = [];
  const ids = new Set<string>();
  for (const r of routes) {
    const path = toOpenApiPath(API_PREFIX + r.path);
    const item = (paths[path] ??= {});
    if (item[r.method]) throw new Error(`openapi: ${r.method.toUpperCase()} ${r.path} is defined twice`);
    const op = b.operation(r);
    if (ids.has(op.operationId as string)) throw new Error(`openapi: operationId ${op.operationId as string} is not unique`);
    ids.add(op.operationId as string);
    item[r.method] = op;
    if (!tags.includes(r.tag)) tags.push(r.tag);
  }
  Object.assign(paths, staticPaths());
  tags.push('system');

  return {
    openapi: '3.1.0',
    info: {
      title: 'Jarvis Orchestrator API',
      version: info.version,
      description: DESCRIPTION,
    },
    ...(info.serverUrl ? { servers: [{ url: info.serverUrl }] } : {}),
    tags: tags.map((name) => (TAGS[name] ? { name, description: TAGS[name] } : { name })),
    paths,
    components: {
      schemas: b.schemas,
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'Access token from POST /api/v1/auth/login',
        },
      },
    },
    'x-websocket': {
      path: '/ws',
      description: 'Devices (device token `dev_...`) and monitors (access token) connect here; ' +
        'token in `Authorization: Bearer` or `?token=`. Frames, messages and close codes: docs/PROTOCOL.md.',
      spec: 'docs/PROTOCOL.md',
    },
  };
}

/** The version in package.json (the document's info.version). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

// The page may run inline script and style and talk to its own origin, nothing else.
export const DOCS_CSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'";

/** GET /api/v1/openapi.json (the raw document) and GET /docs; the document is built once, here. */
export function docsRouter(routes: RouteSpec[], info: Partial<OpenApiInfo> = {}): Router {
  const doc = buildOpenApi(routes, { version: info.version ?? packageVersion(), serverUrl: info.serverUrl });
  const json = JSON.stringify(doc);
  const router = new Router();
  router.get(OPENAPI_PATH, (ctx) => {
    ctx.type = 'application/json';
    ctx.body = json;
  });
  router.get(DOCS_PATH, (ctx) => {
    ctx.set('Content-Security-Policy', DOCS_CSP);
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = DOCS_HTML;
  });
  return router;
}

// The /docs page: plain DOM building (textContent only, no innerHTML), grouped by tag.
export const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Jarvis Orchestrator API</title>
<style>
:root { color-scheme: light dark; --fg: #1f2328; --muted: #59636e; --bg: #fff; --panel: #f6f8fa; --line: #d1d9e0; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9198a1; --bg: #0d1117; --panel: #151b23; --line: #3d444d; } }
body { font: 14px/1.5 system-ui, sans-serif; max-width: 1040px; margin: 0 auto; padding: 1rem 1.5rem 4rem; color: var(--fg); background: var(--bg); }
h1 { margin: .5rem 0 0; } h2 { margin-top: 2rem; border-bottom: 1px solid var(--line); } h4 { margin: .8rem 0 .3rem; }
a { color: inherit; } .muted, .sum { color: var(--muted); } .intro p { margin: .4rem 0; }
nav a { margin-right: 1rem; }
details.op { border: 1px solid var(--line); border-radius: 6px; margin: .4rem 0; background: var(--panel); }
details.op > summary { cursor: pointer; padding: .35rem .6rem; display: flex; gap: .7rem; align-items: baseline; }
.m { font: bold 12px ui-monospace, monospace; color: #fff; border-radius: 4px; padding: .05rem .4rem; min-width: 4.2em; text-align: center; text-transform: uppercase; }
.get { background: #0969da; } .post { background: #1a7f37; } .put { background: #9a6700; } .patch { background: #8250df; } .delete { background: #cf222e; }
.path { font: 600 13px ui-monospace, monospace; } .sum { flex: 1; } .lock { white-space: nowrap; }
.opbody { padding: .2rem .9rem .8rem; border-top: 1px solid var(--line); background: var(--bg); border-radius: 0 0 6px 6px; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; vertical-align: top; padding: .25rem .5rem; border-bottom: 1px solid var(--line); }
code, pre { font-family: ui-monospace, monospace; font-size: 12px; }
pre { background: var(--panel); padding: .6rem; border-radius: 4px; overflow: auto; max-height: 30rem; margin: .3rem 0; }
.err { color: #cf222e; }
</style>
</head>
<body>
<h1 id="title">Jarvis Orchestrator API</h1>
<p class="muted" id="meta"></p>
<div class="intro" id="intro"></div>
<nav id="toc"></nav>
<main id="ops"><p class="muted">Loading ${OPENAPI_PATH}…</p></main>
<script>
(function () {
  'use strict';
  var SPEC_URL = '${OPENAPI_PATH}';
  var METHODS = ['get', 'post', 'put', 'patch', 'delete'];
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs) {
    var n = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { if (attrs[k] != null) n.setAttribute(k, attrs[k]); });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c == null || c === false) continue;
      (Array.isArray(c) ? c : [c]).forEach(function (x) { if (x != null) n.append(typeof x === 'object' ? x : String(x)); });
    }
    return n;
  }
  function pretty(v) { return el('pre', null, el('code', null, JSON.stringify(v, null, 2))); }
  function refName(s) { return s && s.$ref ? s.$ref.split('/').pop() : null; }
  function schemaLink(s) {
    var name = refName(s);
    return name ? el('a', { href: '#schema-' + name }, name) : el('code', null, brief(s));
  }
  // A one-line description of a parameter's schema: type(format), enum, default, bounds.
  function brief(s) {
    if (!s) return '';
    var parts = [];
    var t = Array.isArray(s.type) ? s.type.join(' | ') : (s.type || (s.anyOf ? 'one of ' + s.anyOf.length : 'any'));
    parts.push(s.format ? t + ' (' + s.format + ')' : t);
    if (s.enum) parts.push('one of ' + s.enum.join(', '));
    if (s.default !== undefined) parts.push('default ' + JSON.stringify(s.default));
    if (s.minimum !== undefined || s.maximum !== undefined) parts.push((s.minimum !== undefined ? s.minimum : '…') + '..' + (s.maximum !== undefined ? s.maximum : '…'));
    if (s.maxLength !== undefined) parts.push('max length ' + s.maxLength);
    return parts.join('; ');
  }
  function parametersTable(params) {
    return el('table', null,
      el('thead', null, el('tr', null, el('th', null, 'name'), el('th', null, 'in'), el('th', null, 'required'), el('th', null, 'schema'))),
      el('tbody', null, params.map(function (p) {
        return el('tr', null, el('td', null, el('code', null, p.name)), el('td', null, p.in), el('td', null, p.required ? 'yes' : 'no'),
          el('td', null, brief(p.schema), p.description ? el('div', { class: 'muted' }, p.description) : null));
      })));
  }
  function responsesTable(responses) {
    return el('table', null,
      el('thead', null, el('tr', null, el('th', null, 'status'), el('th', null, 'description'), el('th', null, 'body'))),
      el('tbody', null, Object.keys(responses).map(function (status) {
        var r = responses[status];
        var content = r.content || {};
        return el('tr', null, el('td', null, el('code', null, status)), el('td', null, r.description || ''),
          el('td', null, Object.keys(content).map(function (type) {
            return el('div', null, el('span', { class: 'muted' }, type + ' '), schemaLink(content[type].schema));
          })));
      })));
  }
  function operation(path, method, op) {
    var body = el('div', { class: 'opbody' });
    if (op.description) body.append(el('p', null, op.description));
    body.append(el('p', { class: 'muted' }, op.security && op.security.length ? 'Requires a bearer access token.' : 'No authentication.'));
    if (op.parameters && op.parameters.length) body.append(el('h4', null, 'Parameters'), parametersTable(op.parameters));
    if (op.requestBody) {
      var content = op.requestBody.content || {};
      Object.keys(content).forEach(function (type) {
        body.append(el('h4', null, 'Request body (' + type + (op.requestBody.required ? ', required' : ', optional') + ')'), pretty(content[type].schema));
      });
    }
    body.append(el('h4', null, 'Responses'), responsesTable(op.responses || {}));
    return el('details', { class: 'op', id: op.operationId || null },
      el('summary', null,
        el('span', { class: 'm ' + method }, method),
        el('span', { class: 'path' }, path),
        el('span', { class: 'sum' }, op.summary || ''),
        op.security && op.security.length ? el('span', { class: 'lock', title: 'requires a bearer token' }, '\\u{1F512} auth') : null),
      body);
  }
  function render(doc) {
    document.title = doc.info.title + ' ' + doc.info.version;
    $('title').textContent = doc.info.title;
    $('meta').textContent = 'Version ' + doc.info.version + ' \\u00b7 OpenAPI ' + doc.openapi + ' \\u00b7 ';
    $('meta').append(el('a', { href: SPEC_URL }, SPEC_URL));
    $('intro').replaceChildren.apply($('intro'), String(doc.info.description || '').split(/\\n\\n+/).map(function (p) { return el('p', null, p); }));
    var groups = {};
    var order = (doc.tags || []).map(function (t) { return t.name; });
    Object.keys(doc.paths).forEach(function (path) {
      METHODS.forEach(function (method) {
        var op = doc.paths[path][method];
        if (!op) return;
        var tag = (op.tags && op.tags[0]) || 'other';
        if (order.indexOf(tag) < 0) order.push(tag);
        (groups[tag] = groups[tag] || []).push(operation(path, method, op));
      });
    });
    var sections = [];
    var links = [];
    order.forEach(function (tag) {
      if (!groups[tag]) return;
      var info = (doc.tags || []).filter(function (t) { return t.name === tag; })[0];
      links.push(el('a', { href: '#tag-' + tag }, tag));
      sections.push(el('section', null, el('h2', { id: 'tag-' + tag }, tag),
        info && info.description ? el('p', { class: 'muted' }, info.description) : null, groups[tag]));
    });
    var schemas = (doc.components && doc.components.schemas) || {};
    links.push(el('a', { href: '#schemas' }, 'schemas'));
    sections.push(el('section', null, el('h2', { id: 'schemas' }, 'schemas'), Object.keys(schemas).map(function (name) {
      return el('div', null, el('h4', { id: 'schema-' + name }, name), pretty(schemas[name]));
    })));
    var ws = doc['x-websocket'];
    if (ws) {
      links.push(el('a', { href: '#websocket' }, 'websocket'));
      sections.push(el('section', null, el('h2', { id: 'websocket' }, 'websocket ' + ws.path), el('p', null, ws.description)));
    }
    $('toc').replaceChildren.apply($('toc'), links);
    $('ops').replaceChildren.apply($('ops'), sections);
    if (location.hash) { var target = document.getElementById(location.hash.slice(1)); if (target) { if (target.tagName === 'DETAILS') target.open = true; target.scrollIntoView(); } }
  }
  fetch(SPEC_URL, { headers: { Accept: 'application/json' } })
    .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
    .then(render)
    .catch(function (err) { $('ops').replaceChildren(el('p', { class: 'err' }, 'Could not load ' + SPEC_URL + ': ' + err.message)); });
})();
</script>
</body>
</html>
`;
