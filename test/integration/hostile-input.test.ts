// Hostile input (issue 9): property-based REST bodies and query strings (fast-check), hostile
// workflow definitions, and hostile WebSocket frames. Never a 5xx, always the contract's envelope
// with its error code, and the node stays responsive without growing its memory.
//
// The properties are seeded: FC_SEED=<n> replays a run (a failure prints the seed and path).
import { randomUUID } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import WebSocket from 'ws';
import { offlineRoutes } from '../../scripts/openapi.ts';
import { MAX_FRAME_BYTES, MAX_MONITOR_FRAME_BYTES } from '../../src/protocol/index.ts';
import { DEFAULT_BODY_BYTES, MAX_BODY_BYTES, PARAMETERS_BODY_BYTES } from '../../src/http/route.ts';
import { addDevice, addWorkflow, eventually, linear, signup, type Reply } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
const RUNS = 100;

let sys: System;
let user: { token: string; userId: string; email: string };
let workflowId: string;
let deviceId: string;
let taskId: string;
let webhookId: string;

beforeAll(async () => {
  sys = await startSystem({
    env: {
      // Thousands of requests from 127.0.0.1: the rate limits have their own tests.
      RATE_LIMIT_IP_PER_MIN: '1000000',
      RATE_LIMIT_USER_PER_MIN: '1000000',
      RATE_LIMIT_AUTH_PER_MIN: '1000000',
      // One user registers a device or a workflow per accepted fuzz case: the account limits
      // have their own tests (account-limits.test.ts).
      ACCOUNT_MAX_DEVICES: '1000000',
      ACCOUNT_MAX_WORKFLOWS: '1000000',
      ACCOUNT_MAX_UNFINISHED_RUNS: '1000000',
    },
  });
  user = await signup(sys.api);
  deviceId = (await addDevice(sys.api, user.token)).id; // never connects: tasks on it just wait
  workflowId = await addWorkflow(sys.api, user.token, linear([{ type: 'demo.echo', params: { text: 'hi' } }]));
  const task = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: deviceId }, user.token);
  expect(task.status).toBe(201);
  taskId = task.body.data.task.id;
  const hook = await sys.api.post('/webhooks', { url: 'https://example.com/hook' }, user.token);
  expect(hook.status).toBe(201);
  webhookId = hook.body.data.webhook.id;
});

afterAll(async () => {
  // Tasks the properties created wait for a device that never comes: cancel them.
  const list = (await sys.api.get('/tasks?status=pending&page_size=100', user.token).catch(() => null))?.body.data?.list ?? [];
  for (const t of list as { id: string }[]) await sys.api.post(`/tasks/${t.id}/cancel`, {}, user.token).catch(() => undefined);
  await sys?.stop();
});

/** Runs a property with the file's seed; a failure names the seed to replay it with. */
async function check<T>(name: string, arb: fc.Arbitrary<T>, predicate: (v: T) => Promise<void>, numRuns = RUNS) {
  try {
    await fc.assert(fc.asyncProperty(arb, predicate), { seed: SEED, numRuns });
  } catch (err) {
    (err as Error).message = `${name}: failed with FC_SEED=${SEED}\n${(err as Error).message}`;
    throw err;
  }
}

// ---- the contract's answers ----------------------------------------------------------------------

const CODE_FOR_STATUS: Record<number, number[]> = {
  200: [0], 201: [0], 202: [0],
  400: [1001], 401: [1002], 403: [1003], 404: [2001], 409: [1001, 3001], 413: [1001], 415: [1001], 429: [4029],
};

/** Not a 5xx; the envelope with the code its status carries; a 400 lists field errors. */
function expectContract(res: Reply, what: string, allowed: number[]) {
  expect([what, res.status < 500 ? 'no 5xx' : `${res.status} ${JSON.stringify(res.body)}`]).toEqual([what, 'no 5xx']);
  expect([what, res.status, allowed.includes(res.status)]).toEqual([what, res.status, true]);
  expect([what, Object.keys(res.body ?? {}).sort()]).toEqual([what, ['code', 'data', 'message', 'request_id']]);
  expect([what, res.status, CODE_FOR_STATUS[res.status]?.includes(res.body.code)]).toEqual([what, res.status, true]);
  expect(typeof res.body.message).toBe('string');
  expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
  if (res.status === 400) expect(Array.isArray(res.body.data?.errors)).toBe(true);
}

// ---- hostile JSON, written as text (so `__proto__` keys, duplicate keys and 1e999 reach the wire) --

class Obj {
  readonly entries: [string, J][];
  constructor(entries: [string, J][]) {
    this.entries = entries;
  }
}
/** A JSON token written as is (numbers JSON.stringify cannot produce). */
class Raw {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}
type J = null | boolean | number | string | J[] | Obj | Raw;

function toJson(v: J): string {
  if (v instanceof Obj) return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(',')}}`;
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  return JSON.stringify(v) ?? 'null';
}

const obj = (o: Record<string, J>) => new Obj(Object.entries(o));
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'];

const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 20 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '', ' ', '\u0000', 'a\u0000b', '\ud800', '\udfff', 'x\ud83d', '\u202e\u202d', '🙂👩‍👩‍👧', '\ufeff', 'ﷺ', '\u2028',
      'null', 'undefined', 'NaN', '{{params.x}}', '{{__proto__.polluted}}', "'; drop table users; --", '%00', '%',
      '../../etc/passwd', '<script>alert(1)</script>', '$where', '{"$gt":""}', ...PROTO_KEYS,
      'a@b.c', `u-${'x'.repeat(64)}@example.com`, randomUUID(), '2026-01-01T00:00:00Z', 'high', 'paused',
    ),
  },
  // What PostgreSQL cannot store: NUL anywhere, UTF-16 surrogates without their pair.
  {
    weight: 2,
    arbitrary: fc.tuple(fc.string({ maxLength: 5 }), fc.constantFrom('\u0000', '\ud800', '\udbff', '\udc00', '\udfff'), fc.string({ maxLength: 5 }))
      .map(([a, bad, b]) => `${a}${bad}${b}`),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 200_000 }).map((n) => 'x'.repeat(n)) },
);

/** Nesting deeper than anything real (and than the server's limit), as text: no recursion here. */
const deepValue: fc.Arbitrary<J> = fc.integer({ min: 60, max: 3000 }).map((n) => {
  const open = Array.from({ length: n }, (_, i) => (i % 2 ? '[' : '{"a":')).join('');
  const close = Array.from({ length: n }, (_, i) => (i % 2 ? ']' : '}')).reverse().join('');
  return new Raw(`${open}1${close}`);
});

const hostileNumber: fc.Arbitrary<J> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom<J>(0, -1, 1, 60, 2 ** 31, 2 ** 53 + 1, Number.MAX_VALUE, new Raw('1e999'), new Raw('-1e999'), new Raw('-0'),
    new Raw('123456789012345678901234567890'), new Raw('1E+2'), new Raw('0.0000000000000000000001')),
);

function hostileKey(known: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known, ...PROTO_KEYS) },
    { weight: 1, arbitrary: hostileString },
  );
}

function hostileValue(known: string[]): fc.Arbitrary<J> {
  const { value } = fc.letrec<{ value: J }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', maxDepth: 4 },
      fc.constant(null),
      fc.boolean(),
      hostileNumber,
      hostileString,
      deepValue,
      fc.array(tie('value'), { maxLength: 5 }),
      fc.array(fc.tuple(hostileKey(known), tie('value')), { maxLength: 5 }).map((e) => new Obj(e)),
    ),
  }));
  return value;
}

/**
 * Bodies for one route: anything at all, a valid body with one field made hostile (any value, or
 * a hostile string, which gets past the schema to the database), a valid body with unknown or
 * prototype keys added (also twice the same key), or every field hostile.
 */
function hostileBody(valid: () => Record<string, J>, extraKnown: string[] = []): fc.Arbitrary<J> {
  const fields = Object.keys(valid());
  const known = [...fields, ...extraKnown];
  const value = hostileValue(known);
  return fc.oneof(
    value,
    fc.tuple(fc.constantFrom(...fields), value).map(([f, v]) => new Obj(Object.entries({ ...valid(), [f]: v }))),
    fc.tuple(fc.constantFrom(...fields), hostileString).map(([f, v]) => new Obj(Object.entries({ ...valid(), [f]: v }))),
    fc.array(fc.tuple(hostileKey(known), value), { minLength: 1, maxLength: 3 })
      .map((extra) => new Obj([...Object.entries(valid()), ...extra])),
    fc.tuple(fc.constantFrom(...fields), value).map(([f, v]) => new Obj([...Object.entries(valid()), [f, v]])),
    fc.array(fc.tuple(fc.constantFrom(...known), value), { maxLength: 6 }).map((e) => new Obj(e)),
    fc.constant(new Obj(Object.entries(valid()))),
  );
}

async function sendJson(method: string, path: string, body: J, token?: string) {
  return sys.api.req(method, `/api/v1${path}`, { raw: toJson(body), token, headers: { 'Content-Type': 'application/json' } });
}

async function expectResponsive() {
  const res = await fetch(`${sys.url}/healthz`, { signal: AbortSignal.timeout(5000) });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

const notPolluted = () => {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
};

// ---- REST bodies -------------------------------------------------------------------------------

describe('property-based REST bodies', () => {
  const definition = () => obj({
    nodes: [obj({ id: 'start', type: 'start' }), obj({ id: 's1', type: 'demo.echo', params: obj({ text: 'x' }) }), obj({ id: 'end', type: 'end' })],
    edges: [obj({ from: 'start', to: 's1' }), obj({ from: 's1', to: 'end' })],
  });

  it('POST /tasks', async () => {
    await check('POST /tasks', hostileBody(() => ({ workflow_id: workflowId, device_id: deviceId, parameters: obj({ who: 'x' }), priority: 'low' }), ['idempotency_key']),
      async (body) => {
        const res = await sendJson('POST', '/tasks', body, user.token);
        expectContract(res, `POST /tasks ${toJson(body).slice(0, 300)}`, [200, 201, 400, 404, 409, 413]);
      });
    await expectResponsive();
    notPolluted();
  }, 120_000);

  it('POST /workflows', async () => {
    await check('POST /workflows', hostileBody(() => ({ name: 'fuzz', description: 'd', category: 'c', tags: ['t'], definition: definition(), parameters: obj({}) })),
      async (body) => {
        const res = await sendJson('POST', '/workflows', body, user.token);
        expectContract(res, `POST /workflows ${toJson(body).slice(0, 300)}`, [201, 400, 413]);
      });
    await expectResponsive();
    notPolluted();
  }, 120_000);

  it('PUT /workflows/:id', async () => {
    const id = await addWorkflow(sys.api, user.token, linear([{ type: 'demo.echo' }]), 'to update');
    await check('PUT /workflows/:id', hostileBody(() => ({ name: 'fuzzed', definition: definition(), is_archived: false }), ['description', 'category', 'tags', 'parameters']),
      async (body) => {
        const res = await sendJson('PUT', `/workflows/${id}`, body, user.token);
        expectContract(res, `PUT /workflows/:id ${toJson(body).slice(0, 300)}`, [200, 400, 413]);
      });
    await expectResponsive();
    notPolluted();
  }, 120_000);

  it('POST /auth/register', async () => {
    await check('POST /auth/register', hostileBody(() => ({ email: `f-${randomUUID()}@example.com`, password: 'correct horse battery', name: 'Fuzz' })),
      async (body) => {
        const res = await sendJson('POST', '/auth/register', body);
        expectContract(res, `POST /auth/register ${toJson(body).slice(0, 300)}`, [201, 400, 409, 413]);
      }, 100);
    await expectResponsive();
    notPolluted();
  }, 120_000);

  it('POST /users/devices', async () => {
    await check('POST /users/devices', hostileBody(() => ({ device_id: `pc-${randomUUID()}`, device_name: 'Fuzz PC', os_type: 'windows', os_version: '11', app_version: '1.0', capabilities: ['a'] })),
      async (body) => {
        const res = await sendJson('POST', '/users/devices', body, user.token);
        expectContract(res, `POST /users/devices ${toJson(body).slice(0, 300)}`, [201, 400, 409, 413]);
      });
    await expectResponsive();
    notPolluted();
  }, 120_000);

  it('what PostgreSQL cannot store (NUL, lone surrogates, year 0, deep JSON) is a 400 naming the field', async () => {
    const def = linear([{ type: 'demo.echo' }]);
    const wf = await addWorkflow(sys.api, user.token, def);
    const deep = (n: number): unknown => (n === 0 ? 1 : [deep(n - 1)]);
    const cases: [string, string, unknown, string][] = [
      ['POST', '/auth/register', { email: `n-${randomUUID()}@example.com`, password: 'correct horse battery', name: 'a\u0000b' }, 'name'],
      ['POST', '/auth/login', { email: 'a\u0000@example.com', password: 'correct horse battery' }, 'email'],
      ['POST', '/auth/refresh', { refresh_token: 'rt_\u0000' }, 'refresh_token'],
      ['POST', '/users/devices', { device_id: 'pc\u0000', device_name: 'PC' }, 'device_id'],
      ['POST', '/users/devices', { device_id: `pc-${randomUUID()}`, device_name: 'PC \ud83d' }, 'device_name'],
      ['POST', '/workflows', { name: 'w', definition: def, description: 'lone \udc00' }, 'description'],
      ['POST', '/workflows', { name: 'w', definition: def, parameters: { a: ['x\u0000'] } }, 'parameters.a.0'],
      ['POST', '/workflows', { name: 'w', definition: def, parameters: { p: deep(100) } }, `parameters.p${'.0'.repeat(62)}`],
      ['PUT', `/workflows/${wf}`, { name: '\ud800' }, 'name'],
      ['POST', '/tasks', { workflow_id: workflowId, device_id: deviceId, parameters: { 'k\u0000': 1 } }, 'parameters.k\u0000'],
      ['POST', '/tasks', { workflow_id: workflowId, device_id: deviceId, idempotency_key: '\u0000' }, 'idempotency_key'],
      ['POST', '/tasks', { workflow_id: workflowId, device_id: deviceId, parameters: { p: deep(1000) } }, `parameters.p${'.0'.repeat(62)}`],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await sys.api.req(method, `/api/v1${path}`, { body, token: user.token });
      const what = `${method} ${path} ${field}`;
      expectContract(res, what, [400]);
      expect([what, res.body.data.errors.map((e: { path: string }) => e.path)]).toEqual([what, [field]]);
    }
    const year0 = Buffer.from(JSON.stringify(['0000-01-01T00:00:00.000Z', randomUUID()])).toString('base64url');
    for (const [qs, field] of [['q=%00', 'q'], ['tag=a%00', 'tag'], ['from=0000-01-01T00:00:00Z', 'from'],
      ['to=0001-01-01T00:00:00%2B01:00', 'to'], [`cursor=${year0}`, 'cursor']] as const) {
      const path = field === 'q' || field === 'tag' ? '/workflows' : '/tasks';
      const res = await sys.api.get(`${path}?${qs}`, user.token);
      expectContract(res, `GET ${path}?${qs}`, [400]);
      expect([qs, res.body.data.errors[0].path]).toEqual([qs, field]);
    }
  });

  it('bodies that are not JSON objects, or not JSON at all', async () => {
    for (const raw of ['', ' ', 'null', 'true', '0', '"x"', '[]', '[{}]', '{', '{"a":', '{"a":1}}', '\u0000', '\ufeff{}',
      '{"a":"\\ud800"}', '{"a":"\\u0000"}', 'NaN', '{"a":1e999}', `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
      `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`]) {
      for (const [path, limit] of [['/tasks', PARAMETERS_BODY_BYTES], ['/workflows', MAX_BODY_BYTES], ['/users/devices', DEFAULT_BODY_BYTES]] as const) {
        const res = await sys.api.req('POST', `/api/v1${path}`, { raw, token: user.token, headers: { 'Content-Type': 'application/json' } });
        // Over the route's body limit it is a 413 before parsing; otherwise a 400.
        expectContract(res, `POST ${path} ${JSON.stringify(raw.slice(0, 40))}`, [Buffer.byteLength(raw) > limit ? 413 : 400]);
      }
    }
    await expectResponsive();
  }, 60_000);

  it('a compressed body is held to the 1 MiB limit once inflated; within it, it reads as any other', async () => {
    const send = async (json: string): Promise<Reply> => {
      const res = await fetch(`${sys.url}/api/v1/workflows`, {
        method: 'POST',
        body: gzipSync(json),
        headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', Authorization: `Bearer ${user.token}` },
      });
      return { status: res.status, headers: res.headers, body: await res.json() as Reply['body'] };
    };
    // A few KB on the wire, 2 MiB inflated.
    expectContract(await send(`{"name":"${'x'.repeat(2 * 1024 * 1024)}"}`), 'gzip inflating to 2 MiB', [413]);
    const ok = await send(JSON.stringify({ name: 'gzipped', definition: linear([{ type: 'demo.echo', params: {} }]) }));
    expect([ok.status, ok.body.data?.workflow?.name]).toEqual([201, 'gzipped']);
    await expectResponsive();
  });
});

// ---- query strings -----------------------------------------------------------------------------

describe('property-based query strings', () => {
  const encodings = fc.constantFrom<'encoded' | 'raw' | 'broken'>('encoded', 'raw', 'broken');
  const BROKEN = ['%', '%zz', '%E0%A4%A', '%00', '%C0%AF', '%FF', '%u0041', '+', '&', '=', '#', '%2525'];

  function queryString(known: string[]) {
    const values = fc.oneof(
      hostileString.filter((s) => s.length < 2000),
      fc.constantFrom('1', '0', '-1', '100', '101', '1.5', '1e3', 'true', 'false', 'pending', 'running', randomUUID(), '2026-01-01T00:00:00Z', 'x'.repeat(300)),
    );
    const keys = fc.oneof(fc.constantFrom(...known, ...PROTO_KEYS, `${known[0]}[]`, `${known[0]}[a]`, 'a.b'), hostileString.filter((s) => s.length < 100));
    // Every byte of the UTF-8 (a lone surrogate becomes U+FFFD, as on the wire).
    const enc = (x: string) => [...Buffer.from(x, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
    return fc.array(fc.tuple(keys, values, encodings, fc.constantFrom(...BROKEN)), { maxLength: 6 }).map((pairs) =>
      pairs.map(([k, v, how, broken]) => {
        if (how === 'encoded') return `${enc(k)}=${enc(v)}`;
        if (how === 'raw') return `${k.replace(/[^A-Za-z0-9_.\[\]-]/g, enc)}=${v.replace(/[#&\s%]/g, '').replace(/[\ud800-\udfff]/g, '')}`;
        return `${enc(k)}=${broken}${enc(v.slice(0, 20))}`;
      }).join('&'));
  }

  const EDGE_VALUES = [
    '', '0', '-1', '1000000', '1000001', '1e6', '0x10', ' 1', '1 ', '100', '101', 'NaN', 'Infinity', '9007199254740993',
    '1e20', '2147483648', '-0', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59.999999999Z', '2026-01-01T00:00:00+23:59', '1969-12-31T23:59:59.999Z',
    '%', '_', '\\', '%_%', "'", '"', '\u0000', 'a\u0000', '\ud800', '🙂', 'x'.repeat(201), randomUUID(), randomUUID().toUpperCase(),
    Buffer.from(JSON.stringify(['2026-01-01T00:00:00Z', randomUUID()])).toString('base64url'),
    Buffer.from(JSON.stringify(['0000-01-01T00:00:00Z', randomUUID()])).toString('base64url'),
    Buffer.from(JSON.stringify([1e20, randomUUID()])).toString('base64url'),
    Buffer.from(JSON.stringify(['x', 'y'])).toString('base64url'),
    Buffer.from('{"__proto__":1}').toString('base64url'),
  ];
  const enc = (x: string) => [...Buffer.from(x, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

  // Every GET route with a query schema (lists, stats, a task's events and logs), each of its
  // parameters, every edge value. `:id` is the user's own task, workflow (its versions) or webhook.
  const queried = offlineRoutes().filter((r) => r.method === 'get' && r.auth === 'user' && r.query);
  const ownId = (path: string) => (path.startsWith('/webhooks/:id') ? webhookId : path.startsWith('/workflows/:id') ? workflowId : taskId);
  it('query routes come from the route list', () => {
    expect(queried.map((r) => r.path)).toEqual(expect.arrayContaining(['/tasks', '/workflows', '/tasks/:id/events']));
    for (const r of queried) {
      const known = ['/tasks/:id', '/workflows/:id', '/webhooks/:id'].some((p) => r.path.startsWith(p));
      expect([r.path, /:(?!id\b)/.test(r.path) || (r.path.includes(':') && !known)]).toEqual([r.path, false]);
    }
  });
  for (const r of queried) {
    const params = Object.keys((r.query as unknown as { shape?: Record<string, unknown> }).shape ?? {});
    it(`GET ${r.path}: each of ${params.join(', ')} with every edge value (and some twice)`, async () => {
      expect(params.length).toBeGreaterThan(0);
      const path = r.path.replace(':id', ownId(r.path));
      for (const k of params) {
        const queries = [
          ...EDGE_VALUES.map((v) => [`${k}=${enc(v)}`, JSON.stringify(v)]),
          ...['1', '', EDGE_VALUES.at(-1)!].map((v) => [`${k}=${enc(v)}&${k}=${enc(v)}`, `${JSON.stringify(v)} twice`]),
        ];
        // A few at a time: the same answers, in less time.
        for (let i = 0; i < queries.length; i += 8) {
          await Promise.all(queries.slice(i, i + 8).map(async ([qs, shown]) => {
            const res = await sys.api.get(`${path}?${qs}`, user.token);
            expectContract(res, `GET ${r.path}?${k}=${shown.slice(0, 100)}`, [200, 400]);
          }));
        }
      }
      await expectResponsive();
    }, 120_000);
  }

  for (const [path, known] of [
    ['/tasks', ['page', 'page_size', 'cursor', 'status', 'device_id', 'workflow_id', 'from', 'to']],
    ['/workflows', ['page', 'page_size', 'category', 'tag', 'q', 'archived']],
  ] as const) {
    it(`GET ${path}`, async () => {
      await check(`GET ${path}`, queryString([...known]), async (qs) => {
        const res = await sys.api.get(`${path}?${qs}`, user.token);
        expectContract(res, `GET ${path}?${qs.slice(0, 300)}`, [200, 400]);
      });
      await expectResponsive();
      notPolluted();
    }, 120_000);
  }
});

// ---- workflow definitions ----------------------------------------------------------------------

describe('hostile workflow definitions', () => {
  const start = { id: 'start', type: 'start' };
  const end = { id: 'end', type: 'end' };

  async function postDefinitionText(definitionText: string) {
    return sys.api.req('POST', '/api/v1/workflows', {
      raw: `{"name":"hostile","definition":${definitionText}}`, token: user.token, headers: { 'Content-Type': 'application/json' },
    });
  }
  const post = (definition: unknown) => sys.api.post('/workflows', { name: 'hostile', definition }, user.token);

  /** 400 code 1001; `mention` (a node id) is named in a message, `path` is where a fault is. */
  function expectInvalid(res: Reply, what: string, { mention, path }: { mention?: string; path?: RegExp } = {}) {
    expectContract(res, what, [400]);
    const errs = res.body.data.errors as { path: string; message: string }[];
    expect(errs.length).toBeGreaterThan(0);
    if (mention) expect([what, errs.some((e) => e.message.includes(`"${mention}"`))]).toEqual([what, true]);
    if (path) expect([what, errs.map((e) => e.path)]).toEqual([what, expect.arrayContaining([expect.stringMatching(path)])]);
  }

  it('deep nesting: 10k levels anywhere in a body', async () => {
    const deep = (n: number, open = '[', close = ']') => `${open.repeat(n)}${close.repeat(n)}`;
    const deepObj = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
    expectInvalid(await postDefinitionText(`{"nodes":[{"id":"start","type":"start","params":{"x":${deep(10_000)}}},{"id":"end","type":"end"}],"edges":[]}`),
      'deep array in params', { path: /^definition/ });
    expectInvalid(await postDefinitionText(`{"nodes":[${deepObj(10_000)}],"edges":[]}`), 'deep object in nodes', { path: /^definition/ });
    expectInvalid(await postDefinitionText(deepObj(10_000)), 'deep definition', { path: /^definition/ });
    expectInvalid(await postDefinitionText(deep(10_000)), 'deep array definition', { path: /^definition/ });
    // Free-form JSON fields (workflow parameters, task parameters) are not definitions: refused or
    // stored, but never a 5xx.
    const def = JSON.stringify(linear([{ type: 'demo.echo' }]));
    for (const nested of [deep(10_000), deepObj(10_000)]) {
      const wf = await sys.api.req('POST', '/api/v1/workflows', {
        raw: `{"name":"deep params","definition":${def},"parameters":{"p":${nested}}}`, token: user.token, headers: { 'Content-Type': 'application/json' },
      });
      expectContract(wf, 'deep workflow parameters', [201, 400]);
      const task = await sys.api.req('POST', '/api/v1/tasks', {
        raw: `{"workflow_id":"${workflowId}","device_id":"${deviceId}","parameters":{"p":${nested}}}`, token: user.token, headers: { 'Content-Type': 'application/json' },
      });
      expectContract(task, 'deep task parameters', [201, 400]);
      await expectResponsive();
    }
  });

  it('huge arrays: 100k nodes, 100k edges', async () => {
    const tiny = `{"nodes":[${Array.from({ length: 100_000 }, () => '{}').join(',')}],"edges":[]}`;
    expectInvalid(await postDefinitionText(tiny), '100k empty nodes', { path: /^definition\.nodes/ });
    const ids = Array.from({ length: 100_000 }, (_, i) => `n${i}`);
    const nodes = [start, ...ids.map((id) => ({ id, type: 'demo.echo' })), end];
    // Over the 1 MiB body limit: refused before parsing.
    expectContract(await post({ nodes, edges: [] }), '100k real nodes', [413]);
    const edges = `[${Array.from({ length: 100_000 }, () => '{}').join(',')}]`;
    expectInvalid(await postDefinitionText(`{"nodes":[{"id":"start","type":"start"},{"id":"end","type":"end"}],"edges":${edges}}`),
      '100k empty edges', { path: /^definition\.edges/ });
    // The most the schema allows (500 nodes in a chain) is fine and fast.
    const chain = Array.from({ length: 498 }, (_, i) => ({ id: `c${i}`, type: 'demo.echo' }));
    const res = await post(linearOf([start, ...chain, end]));
    expect(res.status).toBe(201);
    await expectResponsive();
  }, 60_000);

  function linearOf(nodes: { id: string; type: string }[]) {
    return { nodes, edges: nodes.slice(1).map((n, i) => ({ from: nodes[i].id, to: n.id })) };
  }

  it('cycles and self-loops name the node', async () => {
    const a = { id: 'a', type: 'demo.echo' };
    const b = { id: 'b', type: 'demo.echo' };
    const cond = { id: 'check', type: 'condition', params: { if: { var: 'a.ok', eq: true } } };
    // start -> a -> check -true-> a (back edge without a loop node)
    expectInvalid(await post({
      nodes: [start, a, cond, end],
      edges: [{ from: 'start', to: 'a' }, { from: 'a', to: 'check' }, { from: 'check', to: 'a', when: 'true' }, { from: 'check', to: 'end', when: 'false' }],
    }), 'cycle without a loop', { mention: 'a' });
    // A self-loop on a condition.
    expectInvalid(await post({
      nodes: [start, cond, end],
      edges: [{ from: 'start', to: 'check' }, { from: 'check', to: 'check', when: 'true' }, { from: 'check', to: 'end', when: 'false' }],
    }), 'self-loop on a condition', { mention: 'check' });
    // A self-loop on a step (two outgoing edges), and a cycle with no way out.
    expectInvalid(await post({
      nodes: [start, a, end],
      edges: [{ from: 'start', to: 'a' }, { from: 'a', to: 'a' }, { from: 'a', to: 'end' }],
    }), 'self-loop on a step', { mention: 'a' });
    expectInvalid(await post({
      nodes: [start, a, b, end],
      edges: [{ from: 'start', to: 'a' }, { from: 'a', to: 'b' }, { from: 'b', to: 'a' }],
    }), 'closed cycle', { mention: 'end' });
    // Edges into start, to unknown nodes.
    expectInvalid(await post({
      nodes: [start, a, end],
      edges: [{ from: 'start', to: 'a' }, { from: 'a', to: 'start' }],
    }), 'edge into start', { mention: 'start' });
    expectInvalid(await post({
      nodes: [start, a, end],
      edges: [{ from: 'start', to: 'a' }, { from: 'a', to: 'nowhere' }],
    }), 'edge to an unknown node', { mention: 'nowhere' });
    await expectResponsive();
  });

  it('unicode, reserved and duplicate node ids', async () => {
    for (const id of ['ステップ', 'a b', 'é', '🙂', '\u0000', 'a\u202eb', '\ud800', '', 'x'.repeat(65), '../x', '{{x}}']) {
      expectInvalid(await post(linearOf([start, { id, type: 'demo.echo' }, end])), `node id ${JSON.stringify(id)}`, { path: /^definition\.nodes\.1\.id$/ });
    }
    for (const id of ['__proto__', 'constructor', 'prototype', 'params']) {
      expectInvalid(await post(linearOf([start, { id, type: 'demo.echo' }, end])), `reserved id ${id}`, { mention: id });
    }
    expectInvalid(await post(linearOf([start, { id: 'dup', type: 'demo.echo' }, { id: 'dup', type: 'demo.echo' }, end])),
      'duplicate ids', { mention: 'dup', path: /^definition\.nodes\.2\.id$/ });
    expectInvalid(await post({ nodes: [start, { ...start }, end], edges: [{ from: 'start', to: 'end' }] }), 'two starts', { mention: 'start' });
    // Unicode in edge labels and types.
    expectInvalid(await post({ nodes: [start, { id: 's', type: 'démo.echo' }, end], edges: [{ from: 'start', to: 's' }, { from: 's', to: 'end' }] }),
      'unicode type', { path: /^definition\.nodes\.1\.type$/ });
    await expectResponsive();
  });

  it('prototype-pollution keys pollute nothing', async () => {
    const texts = [
      '{"__proto__":{"polluted":1}}',
      '{"nodes":[{"id":"start","type":"start"},{"id":"end","type":"end"}],"edges":[{"from":"start","to":"end"}],"__proto__":{"polluted":1}}',
      '{"nodes":[{"id":"start","type":"start"},{"id":"s1","type":"demo.echo","params":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}},{"id":"end","type":"end"}],"edges":[{"from":"start","to":"s1"},{"from":"s1","to":"end"}]}',
      '{"nodes":[{"id":"start","type":"start","__proto__":{"polluted":1}},{"id":"end","type":"end"}],"edges":[{"from":"start","to":"end"}]}',
      '{"nodes":[{"id":"start","type":"start"},{"id":"c","type":"condition","params":{"if":{"var":"params.x","__proto__":{"polluted":1}}}},{"id":"end","type":"end"}],"edges":[{"from":"start","to":"c"},{"from":"c","to":"end","when":"true"},{"from":"c","to":"end","when":"false"}]}',
      '{"constructor":{"prototype":{"polluted":1}},"nodes":[],"edges":[]}',
    ];
    for (const text of texts) {
      const res = await postDefinitionText(text);
      expectContract(res, `definition ${text.slice(0, 80)}`, [201, 400]);
      if (res.status === 201) {
        // Stored as plain data (or the key dropped), read back as plain data.
        const back = await sys.api.get(`/workflows/${res.body.data.workflow.id}`, user.token);
        expect(back.status).toBe(200);
        expect(Object.getPrototypeOf(back.body.data.workflow.definition)).toBe(Object.prototype);
      }
      notPolluted();
    }
    // Whole bodies and free-form parameters with the same keys.
    const def = JSON.stringify(linear([{ type: 'demo.echo', params: { text: '{{params.polluted}}' } }]));
    for (const raw of [
      `{"__proto__":{"polluted":1},"name":"p","definition":${def}}`,
      `{"name":"p","definition":${def},"parameters":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}}`,
    ]) {
      const res = await sys.api.req('POST', '/api/v1/workflows', { raw, token: user.token, headers: { 'Content-Type': 'application/json' } });
      expectContract(res, raw.slice(0, 60), [201, 400]);
      notPolluted();
    }
    const task = await sys.api.req('POST', '/api/v1/tasks', {
      raw: `{"workflow_id":"${workflowId}","device_id":"${deviceId}","parameters":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}}`,
      token: user.token, headers: { 'Content-Type': 'application/json' },
    });
    expectContract(task, 'task parameters with __proto__', [201, 400]);
    notPolluted();
    await expectResponsive();
  });
});

// ---- WebSocket frames --------------------------------------------------------------------------

type Frame = { id?: string; type: string; re?: string; payload: Record<string, unknown> };

interface Socket {
  ws: WebSocket;
  frames: Frame[];
  /** Resolves once `n` frames matching `test` arrived (counting from now). */
  waitFor(test: (f: Frame) => boolean, n?: number, timeoutMs?: number): Promise<Frame[]>;
}

async function openSocket(token: string): Promise<Socket> {
  const ws = new WebSocket(sys.wsUrl, { headers: { Authorization: `Bearer ${token}` } });
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (raw) => {
    frames.push(JSON.parse(raw.toString()) as Frame);
    for (const w of waiters) w();
  });
  const socket: Socket = {
    ws, frames,
    waitFor(test, n = 1, timeoutMs = 15_000) {
      const from = frames.length;
      return new Promise((resolve, reject) => {
        const check = () => {
          const got = frames.slice(from).filter(test);
          if (got.length >= n) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(got);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`waited for ${n} frames, got ${frames.slice(from).filter(test).length}`));
        }, timeoutMs);
        timer.unref();
        waiters.add(check);
        check();
      });
    },
  };
  await socket.waitFor((f) => f.type === 'hello');
  return socket;
}

const closeCode = (ws: WebSocket) => new Promise<number>((r) => ws.once('close', (code) => r(code)));

async function ping(s: Socket) {
  const id = randomUUID();
  const pong = s.waitFor((f) => f.type === 'pong' && f.re === id);
  s.ws.send(JSON.stringify({ id, type: 'ping', payload: {} }));
  await pong;
}

/** Frames that are wrong in every way but size. */
function badFrames(n: number): (string | Buffer)[] {
  const kinds: ((i: number) => string | Buffer)[] = [
    () => 'not json',
    () => '{',
    () => '',
    () => 'null',
    () => '[]',
    () => '"ping"',
    () => '{"type":"ping"}',
    (i) => JSON.stringify({ id: i, type: 'ping', payload: {} }),
    (i) => JSON.stringify({ id: `b${i}`, type: 'launch', payload: {} }),
    (i) => JSON.stringify({ id: `b${i}`, type: 'subscribe', payload: { task_id: 'nope' } }),
    (i) => JSON.stringify({ id: `b${i}`, type: 'subscribe', payload: [] }),
    (i) => JSON.stringify({ id: `b${i}`, type: 'step/result', payload: { key: 'k' } }),
    (i) => JSON.stringify({ id: 'x'.repeat(500), type: 'ping', payload: { i } }),
    (i) => JSON.stringify({ id: `b${i}`, type: 'ping', ts: 'now', payload: 'x' }),
    (i) => `{"id":"b${i}","type":"subscribe","payload":{"__proto__":{"polluted":1}}}`,
    (i) => JSON.stringify({ id: `b${i}`, type: 'x'.repeat(100), payload: { s: '\u0000\ud800' } }),
    (i) => Buffer.from([0xff, 0xfe, i & 0xff]),
  ];
  return Array.from({ length: n }, (_, i) => kinds[i % kinds.length](i));
}

const isError = (f: Frame) => f.type === 'error';

describe('hostile WebSocket frames', () => {
  const sockets: Socket[] = [];
  afterAll(() => {
    for (const s of sockets) s.ws.terminate();
  });
  const track = (s: Socket) => {
    sockets.push(s);
    return s;
  };

  it('malformed JSON, wrong types and binary frames get error 1001; the connection stays up', async () => {
    for (const [role, token] of [['monitor', user.token], ['device', (await addDevice(sys.api, user.token)).deviceToken]]) {
      const s = track(await openSocket(token));
      for (const bad of badFrames(17)) {
        const got = s.waitFor(isError);
        s.ws.send(bad, { binary: Buffer.isBuffer(bad) });
        const [err] = await got;
        // A well-formed step/result for a key not in flight is a 2001 on a device socket.
        const expected = role === 'device' && String(bad).includes('step/result') ? 2001 : 1001;
        expect([role, String(bad).slice(0, 60), err.payload.code]).toEqual([role, String(bad).slice(0, 60), expected]);
        expect(s.ws.readyState).toBe(WebSocket.OPEN);
      }
      // A binary frame that holds valid JSON is still refused.
      const got = s.waitFor(isError);
      s.ws.send(Buffer.from(JSON.stringify({ id: 'bin', type: 'ping', payload: {} })), { binary: true });
      expect((await got)[0].payload).toMatchObject({ code: 1001, message: expect.stringContaining('binary') });
      await ping(s);
    }
    notPolluted();
  });

  it('property: any frame gets one answer (error, pong, subscribed or unsubscribed) and the socket stays up', async () => {
    // A user of its own: no task of theirs produces events while frames are checked one by one.
    const s = track(await openSocket((await signup(sys.api)).token));
    const known = ['id', 'type', 'ts', 're', 'payload', 'task_id', 'after_seq', 'raw', 'scope', 'key', 'output'];
    const value = hostileValue(known);
    const frameArb = fc.oneof(
      hostileString.filter((x) => x.length < 50_000).map((x) => ({ text: x })),
      value.map((v) => ({ text: toJson(v) })),
      fc.record({
        id: fc.oneof(fc.uuid().map((x): J => x), value),
        type: fc.oneof(fc.constantFrom<J>('ping', 'subscribe', 'unsubscribe', 'step/result', 'log', 'hello', 'error'), value),
        payload: fc.oneof(value, fc.record({ task_id: fc.oneof(fc.uuid().map((x): J => x), value), after_seq: value }).map((p) => obj(p))),
      }).map((f) => ({ text: toJson(obj(f)) })),
    // Larger monitor frames close the socket with 1009 (a test of its own, below).
    ).filter(({ text }) => Buffer.byteLength(text) <= MAX_MONITOR_FRAME_BYTES);
    await check('ws frames', frameArb, async ({ text }) => {
      const answer = s.waitFor(() => true, 1, 10_000);
      s.ws.send(text);
      const [f] = await answer;
      expect([text.slice(0, 200), ['error', 'pong', 'subscribed', 'unsubscribed'].includes(f.type)]).toEqual([text.slice(0, 200), true]);
      if (f.type === 'error') expect([text.slice(0, 200), [1001, 2001].includes(f.payload.code as number)]).toEqual([text.slice(0, 200), true]);
      expect(s.ws.readyState).toBe(WebSocket.OPEN);
    }, 200);
    await ping(s);
    notPolluted();
  }, 120_000);

  it('a device answer the database cannot store is refused (1001); a good answer then completes the run', async () => {
    const d = await addDevice(sys.api, user.token);
    const pc = track(await openSocket(d.deviceToken));
    const beat = setInterval(() => pc.ws.send(JSON.stringify({ id: randomUUID(), type: 'ping', payload: {} })), 1000);
    try {
      const bad: [string, string][] = [
        ['NUL in a value', '{"s":"a\\u0000b"}'],
        ['lone surrogate', '{"s":"a\\ud800b"}'],
        ['NUL in a key', '{"a\\u0000":1}'],
        ['10k levels', `${'['.repeat(10_000)}${']'.repeat(10_000)}`],
      ];
      const wf = await addWorkflow(sys.api, user.token, linear(bad.map(() => ({ type: 'demo.echo' }))));
      const dispatched = pc.waitFor((f) => f.type === 'step/dispatch', 1, 20_000);
      const taskId = (await sys.api.post('/tasks', { workflow_id: wf, device_id: d.id }, user.token)).body.data.task.id as string;
      let [dispatch] = await dispatched;
      for (const [i, [what, output]] of bad.entries()) {
        const key = dispatch.payload.key as string;
        const refused = pc.waitFor((f) => f.re === `bad-${i}`);
        pc.ws.send(`{"id":"bad-${i}","type":"step/result","payload":{"key":${JSON.stringify(key)},"output":${output}}}`);
        const [err] = await refused;
        expect([what, err.type, err.payload.code, (err.payload.errors as { path: string }[])[0].path]).toEqual([what, 'error', 1001, expect.stringMatching(/^payload\.output/)]);
        // Also as a step error and a log line.
        const refusedError = pc.waitFor((f) => f.re === `bad-error-${i}`);
        pc.ws.send(`{"id":"bad-error-${i}","type":"step/error","payload":{"key":${JSON.stringify(key)},"error":{"code":"E","message":"x","details":${output}}}}`);
        expect((await refusedError)[0].payload.code).toBe(1001);
        const last = i === bad.length - 1;
        const next = last ? null : pc.waitFor((f) => f.type === 'step/dispatch', 1, 20_000);
        pc.ws.send(JSON.stringify({ id: `good-${i}`, type: 'step/result', payload: { key, output: { step: i } } }));
        if (next) [dispatch] = await next;
      }
      const task = await eventually(async () => {
        const t = (await sys.api.get(`/tasks/${taskId}`, user.token)).body.data.task;
        return ['completed', 'failed', 'cancelled'].includes(t.status) ? t : null;
      }, 30_000, 'run end');
      expect(task.status).toBe('completed');
      expect(task.steps.map((st: { output: unknown }) => st.output)).toEqual(bad.map((_, i) => ({ step: i })));
    } finally {
      clearInterval(beat);
    }
  }, 60_000);

  it('a frame over 1 MiB closes the socket with 1009; the server stays responsive', async () => {
    for (const [what, data, binary] of [
      ['text', JSON.stringify({ id: 'big', type: 'ping', payload: { pad: 'x'.repeat(MAX_FRAME_BYTES) } }), false],
      ['binary', Buffer.alloc(MAX_FRAME_BYTES + 1, 0x7b), true],
      ['garbage', 'y'.repeat(MAX_FRAME_BYTES + 1), false],
    ] as const) {
      const s = await openSocket(user.token);
      const code = closeCode(s.ws);
      s.ws.send(data, { binary });
      expect([what, await code]).toEqual([what, 1009]);
    }
    await expectResponsive();
    const s = track(await openSocket(user.token));
    await ping(s);
  });

  it('2000 bad frames in a burst, three times: error frames, the socket stays up, memory does not grow', async () => {
    const gc = collector();
    const s = track(await openSocket(user.token));
    const device = track(await openSocket((await addDevice(sys.api, user.token)).deviceToken));
    const heap: number[] = [];
    for (let round = 0; round < 4; round++) {
      // The device socket takes the warm-up burst too; the measured rounds are the monitor's.
      for (const target of round === 0 ? [s, device] : [s]) {
        const errors = target.waitFor(isError, 2000, 45_000);
        for (const bad of badFrames(2000)) target.ws.send(bad, { binary: Buffer.isBuffer(bad) });
        const got = await errors;
        expect(got.every((f) => f.payload.code === 1001 || f.payload.code === 2001)).toBe(true);
        expect(target.ws.readyState).toBe(WebSocket.OPEN);
        await ping(target);
        target.frames.length = 0;
      }
      await expectResponsive();
      heap.push(await settledMemory(gc));
    }
    // Round 0 warms up; the third measured round may not be more than 20 MB above the first.
    const [, first, , third] = heap;
    const bound = gc.real ? 20 * 1024 * 1024 : 150 * 1024 * 1024;
    expect([heap.map((b) => Math.round(b / 1024 / 1024)), third - first <= bound]).toEqual([heap.map((b) => Math.round(b / 1024 / 1024)), true]);
  }, 120_000);
});

/** `global.gc` when exposed, else one obtained through V8 flags; RSS is the fallback measure. */
function collector(): { real: boolean; run(): void } {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    } catch {
      gc = undefined;
    }
  }
  return { real: !!gc, run: () => gc?.() };
}

async function settledMemory(gc: { real: boolean; run(): void }): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc.run();
    await new Promise((r) => setTimeout(r, 50));
  }
  return gc.real ? process.memoryUsage().heapUsed : process.memoryUsage().rss;
}
