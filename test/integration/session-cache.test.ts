// Each API node trusts a login session it found open for SESSION_CACHE_TTL_MS, so that an
// authenticated request does not read `sessions` every time. A revocation on any node must
// still be refused at once on every other node: the revoking statement sends a NOTIFY that
// every node's cache listens to. The TTL here is far longer than the test, so only the
// NOTIFY can explain a refusal.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Api, eventually, signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let a: Api;
let b: Api;

beforeAll(async () => {
  sys = await startSystem({ nodes: 2, env: { SESSION_CACHE_TTL_MS: '60000' } });
  a = new Api(sys.nodes[0].url);
  b = new Api(sys.nodes[1].url);
});

afterAll(async () => {
  await sys?.stop();
});

describe('the session cache', () => {
  it('refuses on node B a session logged out on node A', async () => {
    const user = await signup(a);
    expect((await b.get('/auth/me', user.token)).status).toBe(200); // now cached on B
    expect((await a.post('/auth/logout', {}, user.token)).status).toBeLessThan(300);
    await eventually(async () => (await b.get('/auth/me', user.token)).status === 401, 2000, 'refused on B');
    expect((await a.get('/auth/me', user.token)).status).toBe(401);
  });

  it('refuses everywhere a session revoked by refresh token reuse', async () => {
    const email = `u-${crypto.randomUUID()}@example.com`;
    const password = 'correct horse battery';
    await a.post('/auth/register', { email, password, name: 'Reuse' });
    const login = (await a.post('/auth/login', { email, password })).body.data;
    expect((await b.get('/auth/me', login.access_token)).status).toBe(200);
    expect((await a.post('/auth/refresh', { refresh_token: login.refresh_token })).status).toBe(200);
    // The same refresh token again: reuse, the whole session is revoked.
    expect((await a.post('/auth/refresh', { refresh_token: login.refresh_token })).status).toBe(401);
    await eventually(async () => (await b.get('/auth/me', login.access_token)).status === 401, 2000, 'refused on B');
  });
});
