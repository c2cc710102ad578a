// The OpenAPI 3.1 document, generated from the RouteSpecs: the zod schemas that validate requests
// (z.toJSONSchema, input side) and the ones that describe each response's `data` (output side,
// src/http/schemas/) are the ones documented, with an example of each request and response.
// Served at GET /api/v1/openapi.json and rendered at GET /docs by Scalar's standalone bundle,
// served from node_modules (no CDN: works offline). `npm run openapi` writes the same document
// to docs/openapi.json and the client types generated from it to src/clients/rest/schema.ts.
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import Router from '@koa/router';
import { z } from 'zod';
import { ErrorCode } from '../errors.ts';
import { METRICS_PATH } from './metrics.ts';
import { API_PREFIX, bodyLimit, type RouteSpec } from './route.ts';
import { exampleOf } from './schemas/examples.ts';

type Schema = Record<string, unknown>;

export interface OpenApiInfo {
  version: string;
  /** Base URL of the server (PUBLIC_URL); without it, `/`: paths are relative to where the doc is served. */
  serverUrl?: string;
}

export const OPENAPI_PATH = `${API_PREFIX}/openapi.json`;
export const DOCS_PATH = '/docs';
/** Scalar's standalone bundle, served from node_modules by this node. */
export const DOCS_SCRIPT_PATH = '/docs/scalar.js';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** What each error status means in this API, and which contract code it carries. */
const ERROR_STATUS: Record<number, string> = {
  400: 'Invalid parameters (code 1001); `data.errors` lists each bad field as `{path, message}`',
  401: 'Missing, invalid, expired or revoked access token (code 1002)',
  403: 'Forbidden (code 1003): an account limit is reached (`data.what`, `data.limit`)',
  404: 'Not found, or not yours (code 2001)',
  409: 'Conflicts with the current state, e.g. the run is not in a state that allows it (code 3001), or a unique value is already taken (code 1001)',
  413: 'Request body over the route\'s size limit (code 1001)',
  415: 'Content-Type is not application/json (code 1001)',
  429: 'Too many requests (code 4029): over the per-IP, per-user or login/register limit, or (POST /tasks) the account\'s unfinished runs; wait the `Retry-After` seconds',
  500: 'Internal server error (code 5000)',
  503: 'A dependency (Temporal or PostgreSQL) is unavailable; retry later (code 5000)',
};

/** The contract code each error status carries (for the examples). */
const ERROR_CODE: Record<number, number> = {
  400: ErrorCode.InvalidParams, 401: ErrorCode.Unauthenticated, 403: ErrorCode.Forbidden, 404: ErrorCode.NotFound,
  409: ErrorCode.NotExecutable, 413: ErrorCode.InvalidParams, 415: ErrorCode.InvalidParams, 429: ErrorCode.RateLimited,
  500: ErrorCode.ServerError, 503: ErrorCode.ServerError,
};

const EXAMPLE_REQUEST_ID = 'b7c1e2d4-5f6a-4b8c-9d0e-1f2a3b4c5d6e';

// Each route's tag needs a description here (test/unit/openapi.test.ts checks it).
const TAGS: Record<string, string> = {
  auth: 'Accounts and access tokens',
  users: 'The signed-in user',
  devices: 'PCs bound to the account; they run the steps over the WebSocket',
  workflows: 'Automation definitions (each update of the definition is a new immutable version)',
  tasks: 'Runs of a workflow on a device: start, watch, steer',
  schedules: 'Recurring runs of a workflow on a device (cron or interval), as Temporal schedules',
  logs: 'Logs reported by the user and by devices, per task or not; filters and cursor paging',
  notifications: 'What a person should hear about their runs (ends, failures, approvals, a device offline), stored per user: list, unread count, mark read',
  webhooks: 'Notifications POSTed to your URLs, signed per Standard Webhooks (webhook-id is the notification id); delivery log and redelivery',
  push: 'Pushes to browsers (Web Push, VAPID) and phone apps (FCM): register and unregister them',
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

  /** JSON Schema (2020-12, the dialect of OpenAPI 3.1) of what a client sends (`input`) or receives (`output`). */
  jsonSchema(schema: z.ZodType, where: string, io: 'input' | 'output' = 'input'): Schema {
    const out = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Schema;
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

  example(schema: Schema, io: 'input' | 'output'): unknown {
    return exampleOf(schema, { input: io === 'input', resolve: (ref) => this.schemas[ref.split('/').pop()!] });
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
      description: `${r.auth === 'user' ? 'Needs a bearer access token.' : 'Public: no token.'} ` +
        `Answers ${[r.success.status, ...(r.success.also ?? [])].join(' or ')}: ${r.success.description}.`,
    };
    // Public routes say so with `security: []`: leaving it out reads, to linters and to people,
    // the same as a forgotten requirement.
    op.security = r.auth === 'user' ? [{ bearerAuth: [] }] : [];
    if (parameters.length) op.parameters = parameters;
    if (r.body) {
      const schema = this.jsonSchema(r.body, `body of ${where}`);
      // An absent body is read as `{}`: it is required only when some field is.
      const required = Array.isArray(schema.required) && schema.required.length > 0;
      op.requestBody = {
        required,
        content: { 'application/json': { schema, examples: { request: { summary: 'A valid body', value: this.example(schema, 'input') } } } },
      };
    }
    if (r.multipartFile) {
      op.requestBody = {
        required: true,
        content: {
          'multipart/form-data': {
            schema: {
              type: 'object',
              required: [r.multipartFile],
              properties: { [r.multipartFile]: { type: 'string', contentMediaType: 'application/octet-stream', description: 'The file' } },
            },
          },
        },
      };
    }

    const statuses = new Set(r.errors ?? []);
    if (r.auth === 'user') statuses.add(401);
    if (r.body) {
      // The route's body reader (route.ts) answers these before its schema sees the body.
      statuses.add(413);
      statuses.add(415);
    }
    // The rate limiter (src/http/rate-limit.ts) guards every /api/v1 route.
    statuses.add(429);
    statuses.add(500);
    const responses: Record<string, unknown> = {};
    const success = this.successResponse(r, where);
    for (const status of [r.success.status, ...(r.success.also ?? [])]) responses[String(status)] = success;
    for (const status of [...statuses].sort((a, b) => a - b)) responses[String(status)] = errorResponse(status);
    if (r.body) {
      const limit = bodyLimit(r);
      const size = limit >= 1024 * 1024 ? `${limit / 1024 / 1024} MiB` : `${limit / 1024} KiB`;
      responses['413'] = { ...errorResponse(413), description: `Request body over this route's ${size} limit (code 1001)` };
    }
    op.responses = responses;
    return op;
  }

  /** The envelope with this route's `data`, and an example of it. */
  successResponse(r: RouteSpec, where: string): Schema {
    if (r.success.data === 'binary') {
      return {
        description: r.success.description,
        content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
      };
    }
    const data = this.jsonSchema(r.success.data, `response of ${where}`, 'output');
    const message = r.success.status === 202 ? 'accepted' : 'success';
    return {
      description: r.success.description,
      content: {
        'application/json': {
          schema: { allOf: [ref('Envelope'), { type: 'object', required: ['data'], properties: { data } }] },
          examples: { success: { summary: r.success.description, value: envelopeOf(this.example(data, 'output'), message) } },
        },
      },
    };
  }
}

const envelopeOf = (data: unknown, message = 'success') => ({ code: 0, message, data, request_id: EXAMPLE_REQUEST_ID });

function errorResponse(status: number): Schema {
  const code = ERROR_CODE[status] ?? ErrorCode.ServerError;
  const example = { code, message: (ERROR_STATUS[status] ?? 'error').split(/[:;(]/)[0].trim(), data: null, request_id: EXAMPLE_REQUEST_ID };
  const res: Schema = {
    description: ERROR_STATUS[status] ?? `Error (HTTP ${status})`,
    content: { 'application/json': { schema: ref('Error'), examples: { error: { value: example } } } },
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
  const envelope = (description: string, data: Schema, example: unknown) => ({
    description,
    content: {
      'application/json': {
        schema: { allOf: [ref('Envelope'), { type: 'object', required: ['data'], properties: { data } }] },
        examples: { success: { value: envelopeOf(example) } },
      },
    },
  });
  const text = (type: string, description: string, example: string) => ({
    description, content: { [type]: { schema: { type: 'string' }, examples: { page: { value: example } } } },
  });
  return {
    '/healthz': {
      get: {
        operationId: 'getHealthz', description: 'Public. Answers 200 while the process runs; it checks no dependency.', tags: ['system'], summary: 'Liveness: the process is up', security: [],
        responses: {
          200: envelope('The process answers', {
            type: 'object', required: ['status'], properties: { status: { const: 'ok' } }, additionalProperties: false,
          }, { status: 'ok' }),
        },
      },
    },
    '/readyz': {
      get: {
        operationId: 'getReadyz', description: 'Public. Answers 200 when PostgreSQL and Temporal both answer, 503 otherwise.', tags: ['system'], summary: 'Readiness: PostgreSQL and Temporal answer', security: [],
        responses: {
          200: envelope('Both dependencies answer', {
            type: 'object', required: ['postgres', 'temporal'], additionalProperties: false,
            properties: { postgres: { const: true }, temporal: { const: true } },
          }, { postgres: true, temporal: true }),
          503: {
            description: 'Not ready (code 5000); data: {postgres, temporal} says which one failed',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['code', 'message', 'data', 'request_id'],
                  properties: {
                    code: { const: ErrorCode.ServerError },
                    message: { type: 'string' },
                    data: { type: 'object', properties: { postgres: { type: 'boolean' }, temporal: { type: 'boolean' } } },
                    request_id: { type: 'string' },
                  },
                },
                examples: { error: { value: { code: 5000, message: 'not ready', data: { postgres: true, temporal: false }, request_id: EXAMPLE_REQUEST_ID } } },
              },
            },
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
        // Open unless METRICS_TOKEN is set: either requirement satisfies it.
        security: [{}, { metricsToken: [] }],
        responses: {
          200: text('text/plain', 'Prometheus text exposition format 0.0.4', '# TYPE http_requests_total counter\nhttp_requests_total{method="GET",route="/healthz",status="200"} 3\n'),
          401: { ...errorResponse(401), description: 'METRICS_TOKEN is set and the bearer token is missing or wrong (code 1002)' },
        },
      },
    },
    [OPENAPI_PATH]: {
      get: {
        operationId: 'getOpenApi', description: 'Public. The document this page is generated from, as JSON.', tags: ['system'], summary: 'This OpenAPI 3.1 document (not wrapped in the envelope)', security: [],
        responses: {
          200: { description: 'The OpenAPI document', content: { 'application/json': { schema: { type: 'object' }, examples: { document: { value: { openapi: '3.1.0' } } } } } },
          429: errorResponse(429),
        },
      },
    },
    [DOCS_PATH]: {
      get: {
        operationId: 'getDocs', description: 'Public. Renders this document with Scalar, served by this node (no CDN).', tags: ['system'], summary: 'This documentation as a web page', security: [],
        responses: { 200: text('text/html', 'An HTML page that renders the OpenAPI document', '<!doctype html>…') },
      },
    },
    [DOCS_SCRIPT_PATH]: {
      get: {
        operationId: 'getDocsScript', description: 'Public. The standalone bundle of Scalar, from node_modules.', tags: ['system'], summary: 'The script of the documentation page (Scalar API Reference)', security: [],
        responses: { 200: text('text/javascript', 'Scalar\'s standalone bundle', '/* Scalar API Reference */') },
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
      contact: { name: 'Jarvis Orchestrator maintainers' },
      license: { name: 'Proprietary' },
    },
    servers: [info.serverUrl
      ? { url: info.serverUrl, description: 'This deployment (PUBLIC_URL)' }
      : { url: '/', description: 'The node that serves this document' }],
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
        metricsToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'The METRICS_TOKEN setting, when it is set',
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

// The page runs its own inline start-up and Scalar's bundle (which styles inline and loads
// images as data: URLs), and talks to its own origin only: no CDN, no fonts, no proxy.
export const DOCS_CSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
  "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/** Where npm put Scalar's standalone bundle (the package's exports do not list it). */
const SCALAR_BUNDLE = new URL('../../node_modules/@scalar/api-reference/dist/browser/standalone.js', import.meta.url);

/**
 * Scalar's settings: everything that would reach outside this node is off (its hosted fonts,
 * the AI agent, telemetry, the request proxy), so the page works offline.
 */
const SCALAR_CONFIG = {
  url: OPENAPI_PATH,
  withDefaultFonts: false,
  telemetry: false,
  agent: { disabled: true },
  hideClientButton: true,
  showDeveloperTools: 'never',
  theme: 'default',
};

export const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Jarvis Orchestrator API</title>
</head>
<body>
<noscript>The documentation needs JavaScript; the raw document is at <a href="${OPENAPI_PATH}">${OPENAPI_PATH}</a>.</noscript>
<div id="app"></div>
<script src="${DOCS_SCRIPT_PATH}"></script>
<script>Scalar.createApiReference('#app', ${JSON.stringify(SCALAR_CONFIG)});</script>
</body>
</html>
`;

/** GET /api/v1/openapi.json (the raw document), GET /docs and its script; the document is built once, here. */
export function docsRouter(routes: RouteSpec[], info: Partial<OpenApiInfo> = {}): Router {
  const doc = buildOpenApi(routes, { version: info.version ?? packageVersion(), serverUrl: info.serverUrl });
  const json = JSON.stringify(doc);
  // Read on first use: nodes that never serve /docs never hold the bundle's megabytes.
  let bundle: Promise<Buffer> | undefined;
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
  router.get(DOCS_SCRIPT_PATH, async (ctx) => {
    bundle ??= readFile(SCALAR_BUNDLE).catch((err: unknown) => {
      bundle = undefined;
      throw err;
    });
    ctx.type = 'text/javascript; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = await bundle;
  });
  return router;
}
