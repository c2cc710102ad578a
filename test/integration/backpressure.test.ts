// Backpressure on a slow monitor (docs/PROTOCOL.md): a monitor that stops reading loses
// live-only frames first and stays connected; once it is too far behind when a durable event
// is due, the server closes it with 1013, and resuming with after_seq gives it every durable
// event once, in order. The slow monitor really stops reading; but how much the kernel takes
// from a socket nobody reads varies (TCP autotuning lets it grow to tcp_rmem's maximum, 32 MB
// here), so the test adds a fixed backlog to what the server sees as unsent on that socket
// (its bufferedAmount): first past the drop limit, then past the close limit.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { MonitorClient } from '../../src/clients/monitor-client.ts';
import { abortableSleep } from '../../src/clients/device-client.ts';
import type { TaskEventPayload } from '../../src/protocol/index.ts';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { connectTestDevice, testHandlers, type TestDevice } from '../helpers/devices.ts';
import { startSystem, type System } from '../helpers/system.ts';

const LIVE_DROP = 16 * 1024;
const OVERLOAD = 64 * 1024;
/** Bytes added to the slow socket's real bufferedAmount on the server. */
const backlog = { bytes: 0 };
/** Set by the test once the slow monitor is past the close limit: the noisy step may end. */
const gate = { open: false };

let sys: System;
let user: { token: string; userId: string };
let pc: TestDevice;
let deviceId: string;
let wsUrl: string;
const noiseSent = { n: 0 };

beforeAll(async () => {
  sys = await startSystem({ env: { WS_LIVE_DROP_BYTES: String(LIVE_DROP), WS_OVERLOAD_CLOSE_BYTES: String(OVERLOAD) } });
  wsUrl = sys.wsUrl;
  user = await signup(sys.api);
  const device = await addDevice(sys.api, user.token);
  deviceId = device.id;
  pc = await connectTestDevice(wsUrl, device.deviceToken, {
    ...testHandlers(),
    // Live-only noise: device logs (stored, then shown live) until the test lets the step end.
    'test.noisy': async (_params, ctx) => {
      for (let i = 0; i < 2000 && !gate.open; i++) {
        ctx.log('info', `noise ${i}`);
        noiseSent.n++;
        await abortableSleep(20, ctx.signal);
      }
      return { logs: noiseSent.n };
    },
    // Durable weight: an output of ~8 KB in step.completed (and in run.completed's outputs).
    'test.big': async (params) => ({ blob: `${(params as { n: number }).n} ${'b'.repeat(8000)}` }),
  });
});

afterAll(async () => {
  await pc?.client.stop();
  await sys?.stop();
});

type Frame = { type: string; payload: Record<string, unknown> };

describe('a slow monitor', () => {
  it('loses live-only frames first, is closed 1013 when behind on durable ones, and resumes with after_seq', async () => {
    const steps = [
      { type: 'test.noisy' },
      ...Array.from({ length: 3 }, (_, n) => ({ type: 'test.big', params: { n } })),
    ];
    const workflowId = await addWorkflow(sys.api, user.token, linear(steps));

    // The slow monitor: a raw socket that stops reading once it is subscribed.
    const slow = new WebSocket(wsUrl, { headers: { Authorization: `Bearer ${user.token}` } });
    const frames: Frame[] = [];
    slow.on('message', (raw) => frames.push(JSON.parse(raw.toString())));
    const closed = new Promise<number>((r) => slow.once('close', (code) => r(code)));
    await eventually(async () => frames.some((f) => f.type === 'hello'), 10_000, 'hello');

    const res = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: deviceId }, user.token);
    expect(res.status).toBe(201);
    const taskId = res.body.data.task.id as string;
    slow.send(JSON.stringify({ id: 's1', type: 'subscribe', payload: { task_id: taskId } }));
    await eventually(async () => frames.some((f) => f.type === 'subscribed'), 10_000, 'subscribed');
    const gateway = sys.nodes[0].gateway;
    const before = { ...gateway.backpressure };
    (slow as unknown as { _socket: { pause(): void } })._socket.pause();
    // The server-side socket of the slow monitor (the user's only monitor so far): what it sees
    // as unsent is the real amount plus the backlog.
    const serverSide = [...((gateway as unknown as { monitors: { byUser: Map<string, Set<{ ws: object }>> } }).monitors.byUser.get(user.userId) ?? [])];
    expect(serverSide).toHaveLength(1);
    const ws = serverSide[0].ws;
    const real = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(ws), 'bufferedAmount')!.get!;
    Object.defineProperty(ws, 'bufferedAmount', { get: () => (real.call(ws) as number) + backlog.bytes });
    backlog.bytes = LIVE_DROP + 1; // behind: live-only frames go first, durable ones still go out
    await eventually(async () => gateway.backpressure.liveDropped > before.liveDropped + 5, 30_000, 'live frames dropped');
    expect(slow.readyState).toBe(WebSocket.OPEN);
    backlog.bytes = OVERLOAD + 1; // too far behind: the next durable event closes it
    gate.open = true;

    // A monitor that keeps up, for the reference list.
    const reference = new MonitorClient({ url: wsUrl, token: user.token });
    await reference.start();
    reference.subscribe(taskId);
    const durable = (evs: TaskEventPayload[]) => evs.filter((e) => e.seq !== undefined);
    await reference.waitFor(() => durable(reference.eventsOf(taskId)).some((e) => e.kind === 'run.completed'), 180_000, 'run end');

    // While the slow monitor was still open, live frames were dropped; then it was closed 1013.
    await eventually(async () => gateway.backpressure.overloadClosed > before.overloadClosed, 30_000,
      '1013 close');
    expect(gateway.backpressure.liveDropped).toBeGreaterThan(before.liveDropped);

    // It reads what had been sent before the close, then the close frame: 1013.
    (slow as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await closed).toBe(1013);
    const got = frames.filter((f) => f.type === 'task/event').map((f) => f.payload as unknown as TaskEventPayload);
    const liveGot = got.filter((e) => e.seq === undefined).length;
    expect(liveGot).toBeLessThan(noiseSent.n); // some live-only frames never went out
    const seen = durable(got);
    const expected = durable(reference.eventsOf(taskId)).map((e) => `${e.seq}:${e.kind}`);
    // What it got before the close is a gap-free prefix of the full list, and not all of it.
    expect(seen.map((e) => `${e.seq}:${e.kind}`)).toEqual(expected.slice(0, seen.length));
    expect(seen.length).toBeLessThan(expected.length);

    // Resuming from its last seq gives the rest: every durable event once, in order.
    const resumed = new MonitorClient({ url: wsUrl, token: user.token });
    await resumed.start();
    const last = seen.length ? seen[seen.length - 1].seq! : 0;
    resumed.subscribe(taskId, last);
    await resumed.waitFor(() => durable(resumed.eventsOf(taskId)).some((e) => e.kind === 'run.completed'), 30_000, 'resumed end');
    const rest = durable(resumed.eventsOf(taskId)).map((e) => `${e.seq}:${e.kind}`);
    expect([...seen.map((e) => `${e.seq}:${e.kind}`), ...rest]).toEqual(expected);
    await reference.stop();
    await resumed.stop();
  }, 240_000);
});
