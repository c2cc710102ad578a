// The ws bridge with two API nodes: history-streamed events, resume with after_seq, one
// history poller per task however many monitors, cross-node fan-out of live progress and logs
// (LISTEN/NOTIFY), the user feed, raw mode, and the close codes of the protocol.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { MonitorClient } from '../../src/clients/monitor-client.ts';
import type { TaskEventPayload } from '../../src/protocol/index.ts';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { connectTestDevice, type TestDevice } from '../helpers/devices.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let user: { token: string; userId: string };
let device: { id: string; deviceToken: string };
let pc: TestDevice;
let wsA: string;
let wsB: string;
const clients: { stop(): Promise<void> }[] = [];

beforeAll(async () => {
  sys = await startSystem({ nodes: 2, env: { WS_HEARTBEAT_MS: '2000' } });
  wsA = `${sys.nodes[0].url.replace(/^http/, 'ws')}/ws`;
  wsB = `${sys.nodes[1].url.replace(/^http/, 'ws')}/ws`;
  user = await signup(sys.api);
  device = await addDevice(sys.api, user.token);
  pc = await connectTestDevice(wsA, device.deviceToken); // the device lives on node A
});

afterAll(async () => {
  for (const c of clients) await c.stop().catch(() => undefined);
  await pc?.client.stop();
  await sys?.stop();
});

async function monitorOn(url: string, opts: { reconnect?: boolean } = {}) {
  const m = new MonitorClient({ url, token: user.token, reconnect: opts.reconnect });
  await m.start();
  clients.push(m);
  return m;
}

async function submit(definition: unknown) {
  const workflowId = await addWorkflow(sys.api, user.token, definition);
  const res = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: device.id }, user.token);
  expect(res.status).toBe(201);
  return res.body.data.task.id as string;
}

const durable = (evs: TaskEventPayload[]) => evs.filter((e) => e.seq !== undefined);
const ended = (m: MonitorClient, taskId: string) => () =>
  durable(m.eventsOf(taskId)).some((e) => ['run.completed', 'run.failed', 'run.cancelled'].includes(e.kind));

/** Resolves with the next frame of a raw socket that matches. */
function nextFrame(ws: WebSocket, test: (f: { type: string; re?: string; payload: Record<string, unknown> }) => boolean) {
  return new Promise<{ type: string; re?: string; payload: Record<string, unknown> }>((resolve) => {
    const on = (raw: WebSocket.RawData) => {
      const f = JSON.parse(raw.toString());
      if (test(f)) {
        ws.off('message', on);
        resolve(f);
      }
    };
    ws.on('message', on);
  });
}

async function rawSocket(url: string, token: string) {
  const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` } });
  await nextFrame(ws, (f) => f.type === 'hello');
  return ws;
}
const closeCode = (ws: WebSocket) => new Promise<number>((r) => ws.once('close', (code) => r(code)));

describe('history streaming', () => {
  it('delivers live progress and device logs from node A to a monitor on node B', async () => {
    const monitor = await monitorOn(wsB);
    const taskId = await submit(linear([{ type: 'demo.sleep', params: { ms: 600 } }]));
    monitor.subscribe(taskId);
    await monitor.waitFor(ended(monitor, taskId), 30_000, 'run end');
    const progress = monitor.eventsOf(taskId).filter((e) => e.kind === 'step.progress');
    expect(progress.length).toBeGreaterThanOrEqual(5);
    expect(progress.every((e) => e.seq === undefined)).toBe(true);
    expect(progress.at(-1)!.data.percent).toBe(100);
    expect(durable(monitor.eventsOf(taskId)).map((e) => e.kind)).toEqual(
      ['run.pending', 'run.started', 'step.dispatched', 'step.completed', 'run.completed']);
  });

  it('a monitor that drops at any point and resumes with after_seq sees every event once', async () => {
    const definition = linear([
      { type: 'demo.sleep', params: { ms: 300 } }, { type: 'demo.sleep', params: { ms: 300 } }, { type: 'demo.sleep', params: { ms: 300 } },
    ]);
    const reference = await monitorOn(wsA);
    const droppers = await Promise.all([1, 3, 5, 7].map(() => monitorOn(wsB, { reconnect: true })));
    const taskId = await submit(definition);
    reference.subscribe(taskId);
    droppers.forEach((m) => m.subscribe(taskId));
    // Drop each after a different number of durable events.
    await Promise.all(droppers.map(async (m, i) => {
      await m.waitFor(() => durable(m.eventsOf(taskId)).length >= [1, 3, 5, 7][i], 30_000);
      m.drop();
    }));
    await reference.waitFor(ended(reference, taskId), 30_000, 'run end');
    const expected = durable(reference.eventsOf(taskId)).map((e) => `${e.seq}:${e.kind}`);
    expect(expected).toHaveLength(9);
    for (const m of droppers) {
      await m.waitFor(ended(m, taskId), 30_000, 'resumed run end');
      expect(durable(m.eventsOf(taskId)).map((e) => `${e.seq}:${e.kind}`)).toEqual(expected);
    }
    // A late subscriber after the end gets the full list too, from the start or from a seq.
    const late = await monitorOn(wsB);
    late.subscribe(taskId, 4);
    await late.waitFor(() => durable(late.eventsOf(taskId)).length === 5, 15_000, 'late replay');
    expect(durable(late.eventsOf(taskId)).map((e) => `${e.seq}:${e.kind}`)).toEqual(expected.slice(4));
  });

  it('200 monitors of one run share one history poller on their node', async () => {
    const taskId = await submit(linear([{ type: 'demo.sleep', params: { ms: 500 } }, { type: 'demo.echo', params: {} }]));
    const monitors = await Promise.all(Array.from({ length: 200 }, () => monitorOn(wsB)));
    monitors.forEach((m) => m.subscribe(taskId));
    await Promise.all(monitors.map((m) => m.waitFor(ended(m, taskId), 45_000, 'run end')));
    const node = sys.nodes[1];
    const stream = node.streams.stream(taskId)!;
    expect(stream.watchers).toBe(200);
    // Polls follow history, not monitors: a handful of long-polls for the whole run.
    expect(stream.polls).toBeLessThan(40);
    const lists = new Set(monitors.map((m) => JSON.stringify(durable(m.eventsOf(taskId)).map((e) => e.seq))));
    expect(lists.size).toBe(1);
    await Promise.all(monitors.map((m) => m.stop()));
  }, 90_000);

  it('streams the user feed: new tasks, their events and notifications', async () => {
    const monitor = await monitorOn(wsB);
    const subscribed = monitor.send({ type: 'subscribe', payload: { scope: 'user' } });
    await monitor.waitFor(() => monitor.frames.some((f) => f.type === 'subscribed' && f.re === subscribed), 10_000);
    const taskId = await submit(linear([{ type: 'demo.echo', params: {} }]));
    await monitor.waitFor(ended(monitor, taskId), 30_000, 'user feed run end');
    expect(durable(monitor.eventsOf(taskId)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    await monitor.waitFor(() => monitor.frames.some((f) => f.type === 'notification' && f.payload.task_id === taskId), 10_000);
    const note = monitor.framesOf('notification').find((f) => f.payload.task_id === taskId)!;
    expect(note.payload).toMatchObject({ kind: 'run.completed', title: 'Test workflow: Run completed', body: null });
    expect(note.payload.id).toMatch(/^[0-9a-f-]{36}$/);
    // Another user's tasks never show up.
    const other = await signup(sys.api);
    const spy = new MonitorClient({ url: wsA, token: other.token });
    await spy.start();
    clients.push(spy);
    spy.send({ type: 'subscribe', payload: { scope: 'user' } });
    const second = await submit(linear([{ type: 'demo.echo', params: {} }]));
    await monitor.waitFor(ended(monitor, second), 30_000);
    expect(spy.events).toHaveLength(0);
  });

  it('raw mode forwards the Temporal history events themselves', async () => {
    const taskId = await submit(linear([{ type: 'demo.echo', params: {} }]));
    const monitor = await monitorOn(wsA);
    monitor.send({ type: 'subscribe', payload: { task_id: taskId, raw: true } });
    await monitor.waitFor(() => monitor.frames.some((f) => f.type === 'history/event' &&
      (f.payload.event as { eventType?: string }).eventType === 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED'), 30_000, 'raw completion');
    const raw = monitor.framesOf('history/event');
    expect(raw[0].payload.event_id).toBe(1);
    expect((raw[0].payload.event as { eventType: string }).eventType).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_STARTED');
    const ids = raw.map((f) => f.payload.event_id);
    expect(ids).toEqual(ids.map((_, i) => i + 1));
  });
});

describe('protocol edges', () => {
  it('answers a bad frame with error and re, and keeps the connection', async () => {
    const ws = await rawSocket(wsA, user.token);
    ws.send('not json');
    expect((await nextFrame(ws, (f) => f.type === 'error')).payload.code).toBe(1001);
    ws.send(JSON.stringify({ id: 'f1', type: 'subscribe', payload: { task_id: 'nope' } }));
    const err = await nextFrame(ws, (f) => f.type === 'error');
    expect(err.re).toBe('f1');
    expect(err.payload.errors).toEqual([expect.objectContaining({ path: 'payload.task_id' })]);
    ws.send(JSON.stringify({ id: 'f2', type: 'launch-missiles', payload: {} }));
    expect((await nextFrame(ws, (f) => f.type === 'error')).re).toBe('f2');
    ws.send(JSON.stringify({ id: 'p1', type: 'ping', payload: {} }));
    expect((await nextFrame(ws, (f) => f.type === 'pong')).re).toBe('p1');
    ws.close();
  });

  it('subscribing to another user\'s task answers error 2001', async () => {
    const taskId = await submit(linear([{ type: 'demo.echo', params: {} }]));
    const other = await signup(sys.api);
    const ws = await rawSocket(wsB, other.token);
    ws.send(JSON.stringify({ id: 's1', type: 'subscribe', payload: { task_id: taskId } }));
    const err = await nextFrame(ws, (f) => f.type === 'error');
    expect(err).toMatchObject({ re: 's1', payload: { code: 2001 } });
    ws.close();
  });

  it('a device cannot answer a step it was not dispatched', async () => {
    const other = await addDevice(sys.api, user.token);
    const ws = await rawSocket(wsA, other.deviceToken);
    ws.send(JSON.stringify({ id: 'r1', type: 'step/result', payload: { key: 'a:b:1', output: {} } }));
    expect(await nextFrame(ws, (f) => f.type === 'error')).toMatchObject({ re: 'r1', payload: { code: 2001 } });
    ws.close();
  });

  it('closes with 1009 for a frame over 1 MiB', async () => {
    const ws = await rawSocket(wsA, user.token);
    const code = closeCode(ws);
    ws.send(JSON.stringify({ id: 'big', type: 'ping', payload: { pad: 'x'.repeat(1024 * 1024 + 10) } }));
    expect(await code).toBe(1009);
  });

  it('closes with 4408 when the heartbeat is missed', async () => {
    const ws = await rawSocket(wsB, user.token); // never pings
    const t0 = Date.now();
    expect(await closeCode(ws)).toBe(4408);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
  });

  it('a second session of a device replaces the first (4409)', async () => {
    const d = await addDevice(sys.api, user.token);
    const first = await rawSocket(wsA, d.deviceToken);
    const code = closeCode(first);
    // Both keep their heartbeat, so only the replacement can close the first.
    const beat = (ws: WebSocket) => setInterval(() => ws.readyState === ws.OPEN && ws.send(JSON.stringify({ id: 'hb', type: 'ping', payload: {} })), 500);
    const beats = [beat(first)];
    const second = await rawSocket(wsB, d.deviceToken);
    beats.push(beat(second));
    expect(await code).toBe(4409);
    await eventually(async () => {
      const list = (await sys.api.get('/users/devices', user.token)).body.data.list;
      return list.find((x: { id: string; is_online: boolean }) => x.id === d.id)?.is_online === true;
    }, 10_000, 'device online after replacement');
    beats.forEach(clearInterval);
    second.close();
  });

  it('a late announcement of an older session does not close the newer one', async () => {
    const d = await addDevice(sys.api, user.token);
    const ws = await rawSocket(wsB, d.deviceToken);
    let closedWith: number | null = null;
    ws.once('close', (c) => { closedWith = c; });
    const beat = setInterval(() => ws.readyState === ws.OPEN && ws.send(JSON.stringify({ id: 'hb', type: 'ping', payload: {} })), 500);
    await eventually(async () => {
      const list = (await sys.api.get('/users/devices', user.token)).body.data.list;
      return list.find((x: { id: string; is_online: boolean }) => x.id === d.id)?.is_online === true;
    }, 10_000, 'device online');
    // What node B sees when NOTIFY delivers an older session's announcement after the newer
    // session connected (the race behind the replacement above).
    const stale = { origin: 'another-node', deviceId: d.id, connectionId: 'older-connection', startedAt: Date.now() - 60_000 };
    await sys.orm.em.getConnection().execute(`select pg_notify('jarvis_devices', ?)`, [JSON.stringify(stale)]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(closedWith).toBeNull();
    // A newer one still replaces it.
    const code = closeCode(ws);
    const newer = { ...stale, connectionId: 'newer-connection', startedAt: Date.now() + 1000 };
    await sys.orm.em.getConnection().execute(`select pg_notify('jarvis_devices', ?)`, [JSON.stringify(newer)]);
    expect(await code).toBe(4409);
    clearInterval(beat);
  });

  it('closes sockets with 1001 when a node shuts down', async () => {
    const ws = await rawSocket(wsB, user.token);
    const code = closeCode(ws);
    await sys.nodes[1].stop();
    expect(await code).toBe(1001);
  });
});
