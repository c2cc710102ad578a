// Live device state across two API nodes: the device on node 0 says what it is (device/status),
// GET /users/devices shows it, and its presence changes (online, busy, idle, offline) reach its
// user's feed on node 1 as `device/presence` frames, once per change, and nobody else's feed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DeviceClient, type DeviceClientEvent } from '../../src/clients/device-client.ts';
import { MonitorClient } from '../../src/clients/monitor-client.ts';
import { READINGS_FRAME_MS, WsErrorCode, type DevicePresencePayload, type DeviceStatusPayload } from '../../src/protocol/index.ts';
import { addDevice, eventually, signup } from '../helpers/api.ts';
import { testHandlers } from '../helpers/devices.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let owner: { token: string; userId: string };
let stranger: { token: string; userId: string };
let device: { id: string; deviceToken: string };
let feed: MonitorClient;
let strangerFeed: MonitorClient;
let pc: DeviceClient;
const pcEvents: DeviceClientEvent[] = [];

const wsOf = (node: number) => `${sys.nodes[node].url.replace(/^http/, 'ws')}/ws`;
const presence = (m: MonitorClient): DevicePresencePayload[] => m.framesOf('device/presence').map((f) => f.payload);
const changes = (m: MonitorClient) => presence(m).map((p) => p.change);

async function userFeed(token: string): Promise<MonitorClient> {
  const m = new MonitorClient({ url: wsOf(1), token });
  await m.start();
  m.send({ type: 'subscribe', payload: { scope: 'user' } });
  await m.waitFor(() => m.framesOf('subscribed').length > 0, 10_000, 'the user feed');
  return m;
}

async function listed() {
  const r = await sys.api.get('/users/devices', owner.token);
  expect(r.status).toBe(200);
  return r.body.data.list.find((d: { id: string }) => d.id === device.id);
}

beforeAll(async () => {
  sys = await startSystem({ nodes: 2 });
  owner = await signup(sys.api);
  stranger = await signup(sys.api);
  device = await addDevice(sys.api, owner.token);
  feed = await userFeed(owner.token);
  strangerFeed = await userFeed(stranger.token);
}, 120_000);

afterAll(async () => {
  await pc?.stop();
  await feed?.stop();
  await strangerFeed?.stop();
  await sys?.stop();
});

describe('device/status and presence on the user feed', () => {
  const first: DeviceStatusPayload = {
    app_version: '2.1.0', os_type: 'windows', os_version: '11', cpu_percent: 12.5, memory_percent: 40,
    battery: { percent: 80, charging: true },
  };

  it('a device connecting on another node shows up online, with what it said about itself', async () => {
    const before = await listed();
    expect(before).toMatchObject({ is_online: false, is_busy: false, status: null, status_at: null });
    pc = new DeviceClient({
      url: wsOf(0), token: device.deviceToken, handlers: testHandlers(), status: () => first, onEvent: (e) => pcEvents.push(e),
    });
    await pc.start();
    await feed.waitFor(() => changes(feed).includes('online'), 10_000, 'online on the feed');
    const online = presence(feed)[0];
    expect(online).toEqual({ device_id: device.id, change: 'online', is_online: true, is_busy: false, at: expect.any(Number) });
    expect(Math.abs(online.at - Date.now())).toBeLessThan(60_000);

    const shown = await eventually(async () => {
      const d = await listed();
      return d.status_at && d;
    }, 10_000, 'the status stored');
    expect(shown).toMatchObject({
      is_online: true, is_busy: false, app_version: '2.1.0', os_type: 'windows', os_version: '11',
      status: { cpu_percent: 12.5, memory_percent: 40, battery: { percent: 80, charging: true } },
    });
  }, 30_000);

  it('busy and idle are frames; a status that changes no presence is stored without one', async () => {
    expect(pc.sendStatus({ busy: true })).toBe(true);
    await feed.waitFor(() => changes(feed).includes('busy'), 10_000, 'busy on the feed');
    expect(presence(feed).at(-1)).toMatchObject({ change: 'busy', is_online: true, is_busy: true });
    expect((await listed()).is_busy).toBe(true);

    // Still busy, new readings: stored (merged with the earlier ones), no presence frame.
    pc.sendStatus({ busy: true, cpu_percent: 97 });
    await eventually(async () => (await listed()).status.cpu_percent === 97, 10_000, 'the new reading');
    expect((await listed()).status).toEqual({ cpu_percent: 97, memory_percent: 40, battery: { percent: 80, charging: true } });

    pc.sendStatus({ busy: false });
    await feed.waitFor(() => changes(feed).includes('idle'), 10_000, 'idle on the feed');
    expect(changes(feed)).toEqual(['online', 'busy', 'idle']);
    expect(presence(feed).every((p) => p.device_id === device.id)).toBe(true);
    const ats = presence(feed).map((p) => p.at);
    expect(ats).toEqual([...ats].sort((a, b) => a - b));
  }, 30_000);

  it('readings come as device/readings frames: at most one per device a window, the last always', async () => {
    const readings = () => feed.framesOf('device/readings').map((f) => f.payload);
    await feed.waitFor(() => readings().some((r) => r.status.cpu_percent === 97), 10_000, 'the earlier readings');
    await new Promise((r) => setTimeout(r, READINGS_FRAME_MS + 200)); // a fresh window
    const before = readings().length;
    const started = Date.now();
    for (let cpu = 1; cpu <= 10; cpu++) pc.sendStatus({ cpu_percent: cpu });
    await feed.waitFor(() => readings().at(-1)?.status.cpu_percent === 10, 10_000, 'the last of the burst');
    const windows = 1 + Math.ceil((Date.now() - started) / READINGS_FRAME_MS);
    const burst = readings().slice(before);
    expect(burst.length).toBeLessThanOrEqual(windows);
    expect(burst.length).toBeLessThan(10);
    expect(burst.at(-1)).toEqual({
      device_id: device.id, status: { cpu_percent: 10, memory_percent: 40, battery: { percent: 80, charging: true } }, at: expect.any(Number),
    });
    expect(strangerFeed.framesOf('device/readings')).toEqual([]);
    // Back to the reading the next test expects.
    pc.sendStatus({ cpu_percent: 97 });
    await eventually(async () => (await listed()).status.cpu_percent === 97, 10_000, 'the reading restored');
  }, 30_000);

  it('refuses a status it cannot store with the contract code, and keeps the connection', async () => {
    const errorsBefore = pcEvents.filter((e) => e.type === 'error-frame').length;
    pc.sendStatus({ cpu_percent: 250 });
    pc.sendStatus({ battery: { percent: 50, plugged: 'yes' } } as unknown as DeviceStatusPayload);
    await eventually(async () => pcEvents.filter((e) => e.type === 'error-frame').length >= errorsBefore + 2, 10_000, 'two error frames');
    const errs = pcEvents.filter((e): e is Extract<DeviceClientEvent, { type: 'error-frame' }> => e.type === 'error-frame').slice(errorsBefore);
    expect(errs.map((e) => (e.payload as { code: number }).code)).toEqual([WsErrorCode.InvalidFrame, WsErrorCode.InvalidFrame]);
    expect(pc.connected).toBe(true);
    expect((await listed()).status.cpu_percent).toBe(97);
  }, 20_000);

  it('a replacing connection is no offline; a busy device that reconnects starts idle', async () => {
    pc.sendStatus({ busy: true });
    await feed.waitFor(() => changes(feed).filter((c) => c === 'busy').length === 2, 10_000, 'busy again');
    const n = presence(feed).length;
    // The same device token on the other node replaces the connection (4409 for the old one).
    const second = new DeviceClient({ url: wsOf(1), token: device.deviceToken, handlers: testHandlers(), reconnect: false });
    await second.start();
    await feed.waitFor(() => presence(feed).length > n, 10_000, 'the new connection');
    expect(presence(feed).slice(n)).toEqual([{ device_id: device.id, change: 'online', is_online: true, is_busy: false, at: expect.any(Number) }]);
    await eventually(async () => !pc.connected, 10_000, 'the old connection closed');
    await new Promise((r) => setTimeout(r, 500)); // an offline from the old connection would land by now
    expect(presence(feed).length).toBe(n + 1);
    expect(await listed()).toMatchObject({ is_online: true, is_busy: false });
    await pc.stop();
    pc = second;
  }, 30_000);

  it('going away is offline, on the owner\'s feed only', async () => {
    await pc.stop();
    await feed.waitFor(() => presence(feed).at(-1)?.change === 'offline', 10_000, 'offline on the feed');
    expect(presence(feed).at(-1)).toMatchObject({ device_id: device.id, is_online: false, is_busy: false });
    expect(await listed()).toMatchObject({ is_online: false, is_busy: false, app_version: '2.1.0' });
    expect(presence(strangerFeed)).toEqual([]);
  }, 20_000);

  it("another user's device is on that user's feed, not the owner's", async () => {
    const theirs = await addDevice(sys.api, stranger.token);
    const n = presence(feed).length;
    const other = new DeviceClient({ url: wsOf(0), token: theirs.deviceToken, handlers: testHandlers(), reconnect: false });
    await other.start();
    await strangerFeed.waitFor(() => presence(strangerFeed).length === 1, 10_000, "the stranger's device online");
    expect(presence(strangerFeed)[0]).toMatchObject({ device_id: theirs.id, change: 'online' });
    await other.stop();
    await strangerFeed.waitFor(() => presence(strangerFeed).length === 2, 10_000, "the stranger's device offline");
    expect(presence(feed).length).toBe(n);
  }, 20_000);
});
