// Bad input on every route, generated from the route list itself (so a new route is covered
// the day it is added): an unknown field, a missing required field, a field of the wrong type,
// a too-long string, and a bad id each answer 400 code 1001 naming the field's path.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { offlineRoutes } from '../../scripts/openapi.ts';
import { API_PREFIX } from '../../src/http/route.ts';
import { signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let token: string;
const ANY_ID = '00000000-0000-4000-8000-000000000000';

beforeAll(async () => {
  sys = await startSystem({ env: { RATE_LIMIT_USER_PER_MIN: '100000', RATE_LIMIT_IP_PER_MIN: '100000', RATE_LIMIT_AUTH_PER_MIN: '100000' } });
  token = (await signup(sys.api)).token;
});
afterAll(async () => {
  await sys?.stop();
});

type JsonSchema = { type?: string | string[]; properties?: Record<string, JsonSchema>; required?: string[]; maxLength?: number; anyOf?: JsonSchema[] };

const routes = offlineRoutes();
const bodyRoutes = routes.filter((r) => r.body);
const pathOf = (path: string) => `${API_PREFIX}${path.replace(/:id\b/g, ANY_ID)}`;
const call = (r: (typeof routes)[number], body: unknown, path = pathOf(r.path)) =>
  sys.api.req(r.method.toUpperCase(), path, { body, token: r.auth === 'user' ? token : undefined });
const schemaOf = (r: (typeof routes)[number]) => z.toJSONSchema(r.body!, { io: 'input', unrepresentable: 'any' }) as JsonSchema;

function expectInvalid(res: { status: number; body: { code: number; data: { errors: { path: string }[] } } }, path: string, what: string) {
  expect([what, res.status, res.body.code]).toEqual([what, 400, 1001]);
  expect([what, res.body.data.errors.map((e) => e.path)]).toEqual([what, expect.arrayContaining([path])]);
}

describe('every route with a body', () => {
  it('has routes to check', () => {
    expect(bodyRoutes.length).toBeGreaterThan(15);
  });

  it('rejects an unknown field', async () => {
    for (const r of bodyRoutes) {
      const res = await call(r, { surprise_field: 1 });
      const named = (res.body.data?.errors ?? []).some((e: { message: string }) => e.message.includes('surprise_field'));
      expect([`${r.method} ${r.path}`, res.status, res.body.code, named]).toEqual([`${r.method} ${r.path}`, 400, 1001, true]);
    }
  });

  it('names each missing required field', async () => {
    for (const r of bodyRoutes) {
      const s = schemaOf(r);
      for (const field of s.required ?? []) {
        expectInvalid(await call(r, {}), field, `${r.method} ${r.path} missing ${field}`);
      }
    }
  });

  it('names a field of the wrong type, and a string over its limit', async () => {
    for (const r of bodyRoutes) {
      const props = schemaOf(r).properties ?? {};
      for (const [field, p] of Object.entries(props)) {
        const types = ([] as string[]).concat(p.type ?? (p.anyOf ?? []).flatMap((a) => a.type ?? []));
        if (types.length === 0) continue; // accepts anything (e.g. parameters values)
        const wrong = types.includes('object') || types.includes('array') ? 12345 : { not: 'a scalar' };
        expectInvalid(await call(r, { [field]: wrong }), field, `${r.method} ${r.path} ${field} wrong type`);
        if (types.includes('string') && p.maxLength !== undefined && p.maxLength < 100_000) {
          expectInvalid(await call(r, { [field]: 'x'.repeat(p.maxLength + 1) }), field, `${r.method} ${r.path} ${field} too long`);
        }
      }
    }
  });
});

describe('every route with an id', () => {
  it('answers 400 naming `id` for an id that is not a UUID', async () => {
    const idRoutes = routes.filter((r) => r.path.includes(':id'));
    expect(idRoutes.length).toBeGreaterThan(15);
    for (const r of idRoutes) {
      const res = await call(r, r.body ? {} : undefined, `${API_PREFIX}${r.path.replace(/:id\b/g, 'not-a-uuid')}`);
      expectInvalid(res, 'id', `${r.method} ${r.path}`);
    }
  });
});
