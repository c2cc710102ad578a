// Sessions, refresh-token rotation and reuse detection, logout, device token rotation, and the
// token matrix on REST and WebSocket; workflow export/import; cursor pagination.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { DeviceClient, demoHandlers } from '../../src/clients/device-client.ts';
import { MonitorClient } from '../../src/clients/monitor-client.ts';
import { AccessTokens } from '../../src/domain/tokens.ts';
import { addDevice, addWorkflow, linear, signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;

beforeAll(async () => {
  sys = await startSystem();
});
afterAll(async () => {
  await sys?.stop();
});

async function loginPair(email: string) {
  const res = await sys.api.post('/auth/login', { email, password: 'correct horse battery' });
  expect(res.status).toBe(200);
  return res.body.data as { access_token: string; refresh_token: string; expires_in: number };
}

/** Resolves with the close code of a socket. */
const closed = (ws: WebSocket) => new Promise<number>((r) => ws.once('close', (code) => r(code)));

describe('sessions', () => {
  it('rotates refresh tokens; reusing a spent one revokes the whole session', async () => {
    const { email } = await signup(sys.api);
    const first = await loginPair(email);
    expect(first.refresh_token).toMatch(/^rt_/);

    const r1 = await sys.api.post('/auth/refresh', { refresh_token: first.refresh_token });
    expect(r1.status).toBe(200);
    const second = r1.body.data;
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect((await sys.api.get('/auth/me', second.access_token)).status).toBe(200);

    // The spent token again: refused, and the session (with every token of it) is revoked.
    const reuse = await sys.api.post('/auth/refresh', { refresh_token: first.refresh_token });
    expect(reuse.status).toBe(401);
    expect(reuse.body.code).toBe(1002);
    expect((await sys.api.post('/auth/refresh', { refresh_token: second.refresh_token })).status).toBe(401);
    const me = await sys.api.get('/auth/me', second.access_token);
    expect(me.status).toBe(401);
    expect(me.body.message).toBe('token revoked');

    // Another session of the same user is untouched.
    const other = await loginPair(email);
    expect((await sys.api.get('/auth/me', other.access_token)).status).toBe(200);
  });

  it('logout revokes the session and closes its monitor sockets with 4401', async () => {
    const { email } = await signup(sys.api);
    const pair = await loginPair(email);
    const monitor = new WebSocket(`${sys.wsUrl}?token=${pair.access_token}`);
    await new Promise((r) => monitor.once('message', r)); // hello
    const code = closed(monitor);
    expect((await sys.api.post('/auth/logout', {}, pair.access_token)).status).toBe(200);
    expect(await code).toBe(4401);
    expect((await sys.api.get('/auth/me', pair.access_token)).status).toBe(401);
    expect((await sys.api.post('/auth/refresh', { refresh_token: pair.refresh_token })).status).toBe(401);
    await expect(new MonitorClient({ url: sys.wsUrl, token: pair.access_token }).start()).rejects.toThrow('HTTP 401');
  });

  it('answers 401 code 1002 to missing, malformed, forged, alg-none and expired tokens', async () => {
    const { token, userId } = await signup(sys.api);
    const session = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid as string;
    const expired = await new AccessTokens(sys.config.JWT_SECRET, 60).issue(userId, session, -30);
    const otherKey = await new SignJWT({ typ: 'access', sid: session }).setProtectedHeader({ alg: 'HS256' })
      .setSubject(userId).setJti('x').setIssuer('jarvis').setAudience('jarvis-api').setExpirationTime('1h')
      .sign(new TextEncoder().encode('another-secret-another-secret-another-secret'));
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const algNone = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: userId, sid: session, typ: 'access', jti: 'x', iss: 'jarvis', aud: 'jarvis-api', exp: 9999999999 })}.`;
    for (const [what, header] of [
      ['missing', undefined], ['not bearer', `Basic ${token}`], ['malformed', 'Bearer abc'],
      ['forged', `Bearer ${otherKey}`], ['alg none', `Bearer ${algNone}`], ['expired', `Bearer ${expired}`],
      ['device token', 'Bearer dev_xxxxxxxx'],
    ] as const) {
      const res = await sys.api.req('GET', '/api/v1/tasks', { headers: header ? { Authorization: header } : {} });
      expect([what, res.status, res.body.code]).toEqual([what, 401, 1002]);
    }
    const exp = await sys.api.get('/tasks', expired);
    expect(exp.body.message).toBe('token expired');
  });
});

describe('device tokens', () => {
  it('rotating a device token closes its live session (4401) and refuses the old token', async () => {
    const { token } = await signup(sys.api);
    const device = await addDevice(sys.api, token);
    const codes: number[] = [];
    let onClose!: () => void;
    const pcClosed = new Promise<void>((r) => { onClose = r; });
    const pc = new DeviceClient({
      url: sys.wsUrl, token: device.deviceToken, handlers: demoHandlers, reconnect: false,
      onEvent: (e) => {
        if (e.type === 'disconnected') { codes.push(e.code); onClose(); }
      },
    });
    await pc.start();
    const rotated = await sys.api.post(`/users/devices/${device.id}/token`, {}, token);
    expect(rotated.status).toBe(200);
    expect(rotated.body.data.device_token).not.toBe(device.deviceToken);
    await pcClosed;
    expect(codes).toEqual([4401]);
    await expect(new DeviceClient({ url: sys.wsUrl, token: device.deviceToken, handlers: {} }).start()).rejects.toThrow('HTTP 401');
    const fresh = new DeviceClient({ url: sys.wsUrl, token: rotated.body.data.device_token, handlers: {}, reconnect: false });
    await fresh.start();
    await fresh.stop();
    // A device token cannot act as a user on REST, and a user token is not a device.
    expect((await sys.api.get('/tasks', rotated.body.data.device_token)).status).toBe(401);
  });
});

describe('workflow documents', () => {
  it('exports a portable document and imports it as a new workflow', async () => {
    const { token } = await signup(sys.api);
    const id = await addWorkflow(sys.api, token, linear([{ type: 'demo.echo', params: { a: 1 } }]), 'Exported');
    const exp = await sys.api.get(`/workflows/${id}/export`, token);
    expect(exp.status).toBe(200);
    const doc = exp.body.data;
    expect(doc).toMatchObject({ format: 'jarvis.workflow', format_version: 1, workflow: { name: 'Exported' } });
    expect(JSON.stringify(doc)).not.toContain(id);

    const other = await signup(sys.api);
    const imp = await sys.api.post('/workflows/import', doc, other.token);
    expect(imp.status).toBe(201);
    expect(imp.body.data.workflow.id).not.toBe(id);
    expect(imp.body.data.workflow.definition).toEqual(doc.workflow.definition);

    const withId = await sys.api.post('/workflows/import', { ...doc, workflow: { ...doc.workflow, id } }, other.token);
    expect(withId.status).toBe(400);
    const badDef = await sys.api.post('/workflows/import', { ...doc, workflow: { ...doc.workflow, definition: { nodes: [], edges: [] } } }, other.token);
    expect(badDef.status).toBe(400);
    expect(badDef.body.data.errors[0].path).toMatch(/^definition/);
  });
});

describe('pagination', () => {
  it('walks every task exactly once with next_cursor, newest first', async () => {
    const { token } = await signup(sys.api);
    const device = await addDevice(sys.api, token); // offline: the runs just wait
    const wf = await addWorkflow(sys.api, token, linear([{ type: 'demo.echo' }]));
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      ids.push((await sys.api.post('/tasks', { workflow_id: wf, device_id: device.id }, token)).body.data.task.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: { data: { list: { id: string }[]; next_cursor: string | null; total: number } } } =
        await sys.api.get(`/tasks?page_size=3${cursor ? `&cursor=${cursor}` : ''}`, token);
      expect(res.body.data.total).toBe(7);
      seen.push(...res.body.data.list.map((t) => t.id));
      cursor = res.body.data.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const bad = await sys.api.get('/tasks?cursor=nonsense', token);
    expect(bad.status).toBe(400);
    expect(bad.body.data.errors[0].path).toBe('cursor');
    for (const id of ids) await sys.api.post(`/tasks/${id}/cancel`, {}, token);
  });
});
