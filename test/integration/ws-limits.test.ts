// Per-account and per-socket limits of /ws: monitor sockets per user (refused at the upgrade,
// counted from the request on), task subscriptions per socket, and frame sizes by role and type.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { MAX_CONTROL_FRAME_BYTES, MAX_MONITOR_FRAME_BYTES } from '../../src/protocol/index.ts';
import { addDevice, addWorkflow, linear, signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

const MONITORS = 3;
const SUBSCRIPTIONS = 2;

let sys: System;
const open: WebSocket[] = [];

beforeAll(async () => {
  sys = await startSystem({ env: { WS_MAX_MONITORS_PER_USER: String(MONITORS), WS_MAX_SUBSCRIPTIONS: String(SUBSCRIPTIONS) } });
});

afterAll(async () => {
  for (const ws of open) ws.terminate();
  await sys?.stop();
});

type Frame = { type: string; re?: string; payload: Record<string, unknown> };

/** Opens a socket: 'open' with its frames, or the HTTP status that refused the upgrade. */
function connect(token: string): Promise<{ ws: WebSocket; frames: Frame[] } | { refused: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(sys.wsUrl, { headers: { Authorization: `Bearer ${token}` } });
    const frames: Frame[] = [];
    ws.on('message', (raw) => frames.push(JSON.parse(raw.toString()) as Frame));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ refused: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('open', () => {
      open.push(ws);
      resolve({ ws, frames });
    });
    ws.once('error', () => undefined);
  });
}

async function answer(s: { ws: WebSocket; frames: Frame[] }, frame: Record<string, unknown>): Promise<Frame> {
  const id = randomUUID();
  s.ws.send(JSON.stringify({ id, ...frame }));
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const got = s.frames.find((f) => f.re === id);
    if (got) return got;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no answer to ${JSON.stringify(frame).slice(0, 80)}`);
}

const closed = (ws: WebSocket) => new Promise<number>((r) => ws.once('close', (code) => r(code)));

describe('monitor sockets per user', () => {
  it('admits the limit, refuses one more with 429 even when all arrive at once, and frees a place on close', async () => {
    const { token } = await signup(sys.api);
    // Twice the limit at once: upgrades are counted from the request, so exactly MONITORS pass.
    const all = await Promise.all(Array.from({ length: MONITORS * 2 }, () => connect(token)));
    const admitted = all.filter((r): r is { ws: WebSocket; frames: Frame[] } => 'ws' in r);
    expect(admitted).toHaveLength(MONITORS);
    expect(all.filter((r) => 'refused' in r).map((r) => (r as { refused: number }).refused)).toEqual(new Array(MONITORS).fill(429));
    // Another user is not affected.
    const other = await signup(sys.api);
    expect('ws' in (await connect(other.token))).toBe(true);
    // Closing one frees its place.
    const gone = closed(admitted[0].ws);
    admitted[0].ws.close();
    await gone;
    let again: Awaited<ReturnType<typeof connect>> = { refused: 0 };
    for (let i = 0; i < 50 && !('ws' in again); i++) {
      again = await connect(token);
      if (!('ws' in again)) await new Promise((r) => setTimeout(r, 50));
    }
    expect('ws' in again).toBe(true);
  });
});

describe('subscriptions per socket', () => {
  it('allows the limit, refuses one more with error 4029, and counts a resubscription once', async () => {
    const user = await signup(sys.api);
    const device = await addDevice(sys.api, user.token);
    const workflowId = await addWorkflow(sys.api, user.token, linear([{ type: 'demo.echo' }]));
    const tasks: string[] = [];
    for (let i = 0; i < SUBSCRIPTIONS + 1; i++) {
      const res = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: device.id }, user.token);
      expect(res.status).toBe(201);
      tasks.push(res.body.data.task.id);
    }
    const s = await connect(user.token);
    if (!('ws' in s)) throw new Error('monitor refused');
    for (const taskId of tasks.slice(0, SUBSCRIPTIONS)) {
      expect((await answer(s, { type: 'subscribe', payload: { task_id: taskId } })).type).toBe('subscribed');
    }
    const refused = await answer(s, { type: 'subscribe', payload: { task_id: tasks[SUBSCRIPTIONS] } });
    expect(refused).toMatchObject({ type: 'error', payload: { code: 4029 } });
    // The same task again replaces its subscription; after an unsubscribe there is room.
    expect((await answer(s, { type: 'subscribe', payload: { task_id: tasks[0] } })).type).toBe('subscribed');
    expect((await answer(s, { type: 'unsubscribe', payload: { task_id: tasks[1] } })).type).toBe('unsubscribed');
    expect((await answer(s, { type: 'subscribe', payload: { task_id: tasks[SUBSCRIPTIONS] } })).type).toBe('subscribed');
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('frame sizes', () => {
  it('a monitor frame over its limit closes with 1009 at once; one at the limit is read', async () => {
    const { token } = await signup(sys.api);
    const s = await connect(token);
    if (!('ws' in s)) throw new Error('monitor refused');
    const base = JSON.stringify({ id: 'p', type: 'ping', payload: { pad: '' } });
    const fits = JSON.stringify({ id: 'p', type: 'ping', payload: { pad: 'x'.repeat(MAX_MONITOR_FRAME_BYTES - base.length) } });
    expect(Buffer.byteLength(fits)).toBe(MAX_MONITOR_FRAME_BYTES);
    s.ws.send(fits);
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (s.frames.some((f) => f.type === 'pong' && f.re === 'p')) {
          clearInterval(t);
          resolve();
        }
      }, 20);
    });
    const code = closed(s.ws);
    s.ws.send(`${fits} `);
    expect(await code).toBe(1009);
  });

  it('a device control frame over its limit is refused with 1001 before validation; a large log is taken', async () => {
    const user = await signup(sys.api);
    const device = await addDevice(sys.api, user.token);
    const s = await connect(device.deviceToken);
    if (!('ws' in s)) throw new Error('device refused');
    const pad = 'x'.repeat(MAX_CONTROL_FRAME_BYTES);
    for (const type of ['ping', 'device/status', 'step/progress', 'step/accept']) {
      const got = await answer(s, { type, payload: { key: 'k', pad } });
      expect({ type, answer: got.type, code: got.payload.code, message: got.payload.message })
        .toEqual({ type, answer: 'error', code: 1001, message: `a "${type}" frame may be at most ${MAX_CONTROL_FRAME_BYTES} bytes` });
    }
    // A log with 100 KiB of details is within the device frame limit: no error, and the socket answers pings.
    s.ws.send(JSON.stringify({ id: 'log-1', type: 'log', payload: { level: 'info', message: 'big', details: { text: 'x'.repeat(100 * 1024) } } }));
    expect((await answer(s, { type: 'ping', payload: {} })).type).toBe('pong');
    expect(s.frames.some((f) => f.re === 'log-1' && f.type === 'error')).toBe(false);
  });
});
