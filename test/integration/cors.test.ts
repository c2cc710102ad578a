// Cross-origin access: the configured origins (the PC client's webview, the web app) get CORS
// headers on preflights, answers and errors; any other origin gets none; no credentials allowed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

const WEBVIEW = 'tauri://localhost';
const WEB_APP = 'https://app.example.com';

let sys: System;

beforeAll(async () => {
  sys = await startSystem({ env: { CORS_ORIGINS: `${WEBVIEW},${WEB_APP}` } });
});
afterAll(async () => {
  await sys?.stop();
});

const preflight = (origin: string, method: string, headers: string) => fetch(`${sys.url}/api/v1/tasks`, {
  method: 'OPTIONS',
  headers: { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers },
});

describe('CORS', () => {
  it('answers a listed origin\'s preflight with what it may send, without credentials', async () => {
    for (const origin of [WEBVIEW, WEB_APP]) {
      const res = await preflight(origin, 'POST', 'authorization,content-type');
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(origin);
      expect(res.headers.get('access-control-allow-methods')?.split(',')).toEqual(expect.arrayContaining(['GET', 'POST', 'PUT', 'DELETE']));
      expect(res.headers.get('access-control-allow-headers')?.toLowerCase().split(',')).toEqual(expect.arrayContaining(['authorization', 'content-type']));
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      expect(Number(res.headers.get('access-control-max-age'))).toBeGreaterThan(0);
      expect(res.headers.get('vary')).toMatch(/Origin/);
    }
  });

  it('gives another origin nothing to read', async () => {
    for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.net', 'null', 'http://app.example.com']) {
      const pre = await preflight(origin, 'POST', 'authorization');
      expect(pre.headers.get('access-control-allow-origin')).toBeNull();
      const get = await fetch(`${sys.url}/healthz`, { headers: { Origin: origin } });
      expect(get.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  it('marks answers and errors to a listed origin, exposing the request id and Retry-After', async () => {
    const { token } = await signup(sys.api);
    const ok = await sys.api.req('GET', '/api/v1/auth/me', { token, headers: { Origin: WEBVIEW } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(WEBVIEW);
    expect(ok.headers.get('access-control-expose-headers')?.split(',')).toEqual(expect.arrayContaining(['X-Request-ID', 'Retry-After']));

    // A 401 and a 400 are readable by the page too (it shows why).
    const unauth = await sys.api.req('GET', '/api/v1/tasks', { headers: { Origin: WEB_APP } });
    expect([unauth.status, unauth.body.code]).toEqual([401, 1002]);
    expect(unauth.headers.get('access-control-allow-origin')).toBe(WEB_APP);
    const bad = await sys.api.req('POST', '/api/v1/tasks', { token, body: { workflow_id: 'nope' }, headers: { Origin: WEB_APP } });
    expect([bad.status, bad.body.code]).toEqual([400, 1001]);
    expect(bad.headers.get('access-control-allow-origin')).toBe(WEB_APP);

    // Without an Origin (native apps, scripts): no CORS headers, same answers.
    const native = await sys.api.req('GET', '/api/v1/auth/me', { token });
    expect([native.status, native.headers.get('access-control-allow-origin')]).toEqual([200, null]);
  });
});
