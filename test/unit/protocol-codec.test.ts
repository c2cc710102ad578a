// The protocol codec: every frame a side encodes parses back to itself on the other side, and
// bad frames are refused with the path of what is wrong (the `error` frame's payload).
import { describe, expect, it } from '@jest/globals';
import {
  CloseCode,
  WsErrorCode,
  encodeFrame,
  encodeSharedFrame,
  isFinalClose,
  parseDeviceFrame,
  parseMonitorFrame,
  parseServerToDevice,
  parseServerToMonitor,
  type DeviceToServer,
  type MonitorToServer,
  type ServerToDevice,
  type ServerToMonitor,
} from '../../src/protocol/index.ts';

const TASK = '0b6a4f5e-3c1d-4e8a-9f2b-7d6c5e4a3b21';

const deviceFrames: DeviceToServer[] = [
  { type: 'ping', payload: {} },
  { type: 'step/accept', payload: { key: 'k1' } },
  { type: 'step/progress', payload: { key: 'k1', percent: 50, message: 'half' } },
  { type: 'step/result', payload: { key: 'k1', output: { a: [1, 'two', null] } } },
  { type: 'step/error', payload: { key: 'k1', error: { code: 'BOOM', message: 'it broke', retryable: false } } },
  { type: 'log', payload: { task_id: TASK, key: 'k1', level: 'warn', message: 'careful', details: { n: 1 } } },
  { type: 'device/status', payload: { busy: true, app_version: '1.2.3' } },
  { type: 'device/status', payload: { os_type: 'windows', os_version: '11', cpu_percent: 7.5, memory_percent: 40, battery: { percent: 90, charging: false } } },
  { type: 'step/artifact', payload: { key: 'k1', kind: 'screenshot', name: 'screen.png', data: Buffer.from([0x89, 0x50, 0x4e, 0x47]).toString('base64') } },
];

const monitorFrames: MonitorToServer[] = [
  { type: 'ping', payload: {} },
  { type: 'subscribe', payload: { task_id: TASK, after_seq: 4, raw: true } },
  { type: 'subscribe', payload: { scope: 'user' } },
  { type: 'unsubscribe', payload: { task_id: TASK } },
  { type: 'unsubscribe', payload: { scope: 'user' } },
];

const hello = { type: 'hello', payload: { role: 'device', session_id: 's1', heartbeat_ms: 30_000, protocol: 1 } } as const;
const serverToDevice: ServerToDevice[] = [
  hello,
  { type: 'pong', payload: {} },
  { type: 'error', payload: { code: WsErrorCode.NotFound, message: 'no such key', errors: [{ path: 'payload.key', message: 'x' }] } },
  {
    type: 'step/dispatch',
    payload: { task_id: TASK, step_id: 'n1', attempt: 2, key: 'k1', type: 'shell', params: { cmd: 'ls' }, timeout_ms: 5000 },
  },
  { type: 'step/pause', payload: { key: 'k1' } },
  { type: 'step/resume', payload: { key: 'k1' } },
  { type: 'step/abort', payload: { key: 'k1', reason: 'cancelled' } },
];

const serverToMonitor: ServerToMonitor[] = [
  { ...hello, payload: { ...hello.payload, role: 'monitor' } },
  { type: 'subscribed', payload: { task_id: TASK, status: 'running', raw: true } },
  { type: 'subscribed', payload: { scope: 'user' } },
  { type: 'unsubscribed', payload: { task_id: TASK } },
  { type: 'task/event', payload: { task_id: TASK, seq: 3, kind: 'step.completed', at: 1_700_000_000_000, data: { node_id: 'n1' } } },
  { type: 'task/event', payload: { task_id: TASK, kind: 'log', at: 1_700_000_000_001, data: { level: 'info' } } },
  { type: 'device/presence', payload: { device_id: TASK, change: 'busy', is_online: true, is_busy: true, at: 1_700_000_000_002 } },
  { type: 'history/event', payload: { task_id: TASK, event_id: 7, event: { eventType: 'X' } } },
  { type: 'notification', payload: { id: '5d1c0f3e-2b4a-4c6d-8e9f-0a1b2c3d4e5f', task_id: TASK, kind: 'run.completed', title: 'Run completed', body: null, at: 1 } },
];

function roundTrip<T>(frames: T[], encode: (f: T) => string, parse: (t: string) => { ok: boolean; frame?: unknown }) {
  for (const f of frames) {
    const res = parse(encode(f));
    expect(res).toMatchObject({ ok: true });
    expect(res.frame).toEqual(f);
  }
}

describe('protocol codec round trip', () => {
  it('device -> server', () => roundTrip(deviceFrames, (f) => encodeFrame(f), (t) => parseDeviceFrame(t)));
  it('monitor -> server', () => roundTrip(monitorFrames, (f) => encodeFrame(f), (t) => parseMonitorFrame(t)));
  it('server -> device', () => roundTrip(serverToDevice, (f) => encodeFrame(f, 'req-1'), parseServerToDevice));
  it('server -> monitor, shared frames too', () => {
    roundTrip(serverToMonitor, (f) => encodeFrame(f), parseServerToMonitor);
    roundTrip(serverToMonitor, (f) => encodeSharedFrame(f), parseServerToMonitor);
  });

  it('envelope: fresh id and ts, re only when answering', () => {
    const a = JSON.parse(encodeFrame({ type: 'pong', payload: {} }, 'req-9'));
    const b = JSON.parse(encodeFrame({ type: 'pong', payload: {} }));
    expect(a.re).toBe('req-9');
    expect('re' in b).toBe(false);
    expect(a.id).not.toBe(b.id);
    expect(typeof a.ts).toBe('number');
    const parsed = parseServerToDevice(JSON.stringify(a));
    expect(parsed.ok && parsed.envelope.re).toBe('req-9');
  });

  it('a shared frame serializes its payload once but gets its own id', () => {
    const ev: ServerToMonitor = serverToMonitor[4];
    const one = JSON.parse(encodeSharedFrame(ev));
    const two = JSON.parse(encodeSharedFrame(ev));
    expect(one.payload).toEqual(two.payload);
    expect(one.id).not.toBe(two.id);
  });
});

describe('protocol codec refuses bad frames', () => {
  const env = (type: string, payload: unknown, id = 'f1') => JSON.stringify({ id, type, payload });

  it('not JSON', () => {
    expect(parseDeviceFrame('{nope')).toEqual({ ok: false, error: { code: WsErrorCode.InvalidFrame, message: 'frame is not valid JSON' } });
  });

  it('a bad envelope, answered to its id when it has one', () => {
    const res = parseMonitorFrame(JSON.stringify({ id: 'abc', payload: {} }));
    expect(res).toMatchObject({ ok: false, re: 'abc', error: { code: 1001, message: 'invalid frame envelope' } });
    expect(!res.ok && res.error.errors?.map((e) => e.path)).toEqual(['type']);
    const noId = parseMonitorFrame(JSON.stringify({ type: 'ping' }));
    expect(noId.ok).toBe(false);
    expect(!noId.ok && noId.re).toBeUndefined();
  });

  it('a payload wrong for its type, with the paths', () => {
    const res = parseDeviceFrame(env('step/error', { key: 'k', error: { code: '', message: 3 } }));
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res.re).toBe('f1');
    expect(res.error.message).toBe('invalid "step/error" frame');
    expect(res.error.errors?.map((e) => e.path).sort()).toEqual(['payload.error.code', 'payload.error.message']);
  });

  it('a type from the other role or direction', () => {
    expect(parseDeviceFrame(env('subscribe', { scope: 'user' })).ok).toBe(false);
    expect(parseMonitorFrame(env('step/result', { key: 'k' })).ok).toBe(false);
    expect(parseServerToDevice(env('task/event', serverToMonitor[4].payload)).ok).toBe(false);
    expect(parseServerToMonitor(env('step/dispatch', serverToDevice[3].payload)).ok).toBe(false);
    const unknown = parseMonitorFrame(env('teleport', {}));
    expect(!unknown.ok && unknown.error.errors?.[0].path).toBe('type');
  });

  it('extra keys in a subscribe are refused (strict), not ignored', () => {
    const res = parseMonitorFrame(env('subscribe', { task_id: TASK, after: 3 }));
    expect(res.ok).toBe(false);
    const notUuid = parseMonitorFrame(env('subscribe', { task_id: 'not-a-uuid' }));
    expect(notUuid.ok).toBe(false);
  });

  it('the server-side refusal hook runs before the schema, its path under payload', () => {
    const res = parseDeviceFrame(env('log', { level: 'info', message: 'a\u0000b' }), {
      refuse: (p) => (typeof p.message === 'string' && p.message.includes('\u0000') ? { path: 'message', message: 'NUL' } : null),
    });
    expect(res).toMatchObject({ ok: false, re: 'f1', error: { errors: [{ path: 'payload.message', message: 'NUL' }] } });
  });
});

describe('close codes', () => {
  it('the codes after which a client stays down', () => {
    const final = Object.values(CloseCode).filter(isFinalClose).sort();
    expect(final).toEqual([4401, 4403, 4409]);
  });
});
