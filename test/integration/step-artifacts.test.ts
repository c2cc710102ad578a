// Step artifacts end to end: a device attaches files to the step it runs (a real PNG from
// demo.screenshot, one made here with sharp, a screenshot taken when a step fails), the run
// records a durable step.artifact event before the step's outcome, the owner lists and fetches
// them (content as sent, a WebP thumbnail), nobody else can, a device cannot attach to a step
// that is not its own, bad files and a full quota are refused with 1001, deleting the task
// deletes them, and files attached around a lost connection are reported with the answer that
// comes late, on the next connection.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import sharp from 'sharp';
import WebSocket from 'ws';
import { DeviceClient, demoHandlers, type DeviceClientEvent, type StepHandler } from '../../src/clients/device-client.ts';
import { MonitorClient } from '../../src/clients/monitor-client.ts';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { retentionScheduleId } from '../../src/domain/artifact-retention.ts';
import { recordHistory } from '../helpers/histories.ts';
import { testHandlers } from '../helpers/devices.ts';
import { startSystem, type System } from '../helpers/system.ts';

/** Small, so that a few files fill it. */
const QUOTA = 400_000;

let sys: System;
let owner: { token: string; userId: string };
let device: { id: string; deviceToken: string };
let pc: DeviceClient;
const pcEvents: DeviceClientEvent[] = [];
/** What the test's own handler attached, by name: the bytes the server must give back. */
const sent = new Map<string, Buffer>();
/** The API node the device connects to (its next connection, after a drop). */
let pcNode = 0;
/** The test.hold steps wait here, for the test to act while they are in flight. */
let release: () => void = () => undefined;
let held: Promise<void> = Promise.resolve();
/** What the device's screen shows when a step fails (its `screenshot` option). */
let FAILURE_SCREEN: Buffer;
/** The device's own journal of test.across-drop's attach() calls that went out (true) on a socket. */
const journal: { key: string; name: string; bytes: Buffer; connection: string }[] = [];
/** test.across-drop waits here between its two attachments, for the test to drop the socket. */
let acrossDrop: { attached(): void; resume: Promise<void> } = { attached: () => undefined, resume: Promise.resolve() };

function handlers(): Record<string, StepHandler> {
  return {
    ...testHandlers(),
    'demo.screenshot': demoHandlers['demo.screenshot'],
    'test.attach': async (params, ctx) => {
      const p = params as { name: string; kind?: 'screenshot' | 'file'; text?: string; binary?: number[]; image?: { width: number; height: number } };
      const bytes = p.image
        ? await sharp({ create: { width: p.image.width, height: p.image.height, channels: 3, background: '#3a7' } }).jpeg().toBuffer()
        : p.binary ? Buffer.from(p.binary) : Buffer.from(p.text ?? '', 'utf8');
      sent.set(p.name, bytes);
      ctx.attach(p.name, bytes, p.kind);
      return { attached: p.name };
    },
    'test.hold': async () => {
      await held;
      return { held: true };
    },
    // Attaches a file, then works on without answering until aborted.
    'test.attach-then-hang': async (_params, ctx) => {
      const bytes = Buffer.from(`state of ${ctx.key}`);
      if (ctx.attach('before-timeout.txt', bytes)) journal.push({ key: ctx.key, name: 'before-timeout.txt', bytes, connection: pc.connectionId ?? '' });
      await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
    },
    // One file on the first connection, one after the test dropped it (sent on the next one).
    'test.across-drop': async (_params, ctx) => {
      const attach = async (name: string, bytes: Buffer) => {
        const connection = pc.connectionId ?? '';
        if (ctx.attach(name, bytes, 'screenshot')) journal.push({ key: ctx.key, name, bytes, connection });
      };
      await attach('before-drop.png', await sharp({ create: { width: 40, height: 30, channels: 3, background: '#123' } }).png().toBuffer());
      acrossDrop.attached();
      await acrossDrop.resume;
      await attach('after-drop.png', await sharp({ create: { width: 50, height: 20, channels: 3, background: '#456' } }).png().toBuffer());
      return { across: true };
    },
  };
}

const get = (path: string, token = owner.token) => sys.api.get(path, token);
async function raw(path: string, token = owner.token) {
  const res = await fetch(`${sys.url}/api/v1${path}`, { headers: { Authorization: `Bearer ${token}` } });
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

async function runToEnd(steps: Parameters<typeof linear>[0]): Promise<{ taskId: string; status: string }> {
  const wf = await addWorkflow(sys.api, owner.token, linear(steps));
  const res = await sys.api.post('/tasks', { workflow_id: wf, device_id: device.id }, owner.token);
  expect(res.status).toBe(201);
  const taskId: string = res.body.data.task.id;
  const status = await eventually(async () => {
    const t = await get(`/tasks/${taskId}`);
    return ['completed', 'failed', 'cancelled'].includes(t.body.data.task.status) && t.body.data.task.status;
  }, 30_000, 'the run to end');
  return { taskId, status };
}

async function events(taskId: string): Promise<{ seq: number; kind: string; data: Record<string, unknown> }[]> {
  return eventually(async () => {
    const r = await get(`/tasks/${taskId}/events`);
    const list = r.body.data.list;
    return list.some((e: { kind: string }) => e.kind.startsWith('run.') && ['run.completed', 'run.failed'].includes(e.kind)) && list;
  }, 10_000, 'the mirrored events');
}

/**
 * Starts a run of test.across-drop and drops the device's socket after its first file is stored
 * (the next connection goes to API node `nextNode`); `resume` lets the step attach its second
 * file and answer.
 */
async function runAcrossDrop(monitor: MonitorClient, nextNode: number): Promise<{ taskId: string; resume: () => void }> {
  let attached!: () => void;
  const firstAttached = new Promise<void>((r) => { attached = r; });
  let resume!: () => void;
  acrossDrop = { attached, resume: new Promise<void>((r) => { resume = r; }) };
  const wf = await addWorkflow(sys.api, owner.token, linear([{ type: 'test.across-drop' }]));
  const res = await sys.api.post('/tasks', { workflow_id: wf, device_id: device.id }, owner.token);
  const taskId: string = res.body.data.task.id;
  monitor.subscribe(taskId);
  await firstAttached;
  // The first file is stored before its connection goes.
  await eventually(async () => (await get(`/tasks/${taskId}/artifacts`)).body.data.total === 1, 10_000, 'the first file stored');
  const connectedBefore = pcEvents.filter((e) => e.type === 'connected').length;
  pcNode = nextNode;
  pc.drop();
  await eventually(async () => pcEvents.filter((e) => e.type === 'connected').length > connectedBefore, 10_000, 'the device back');
  return { taskId, resume };
}

const ended = (k: string) => ['run.completed', 'run.failed', 'run.cancelled'].includes(k);

beforeAll(async () => {
  FAILURE_SCREEN = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#c00' } }).png().toBuffer();
  // Two API nodes: the device moves from one to the other in the last test.
  sys = await startSystem({ nodes: 2, env: { USER_QUOTA_BYTES: String(QUOTA) } });
  owner = await signup(sys.api);
  device = await addDevice(sys.api, owner.token);
  pc = new DeviceClient({
    url: () => `${sys.nodes[pcNode].url.replace(/^http/, 'ws')}/ws`, token: device.deviceToken, handlers: handlers(), maxBackoffMs: 500,
    screenshot: async () => FAILURE_SCREEN, onEvent: (e) => pcEvents.push(e),
  });
  await pc.start();
}, 120_000);

afterAll(async () => {
  release();
  await pc?.stop();
  await sys?.stop();
});

describe('step artifacts', () => {
  let taskId: string;

  it('demo.screenshot attaches a real PNG; the run records step.artifact before step.completed', async () => {
    const run = await runToEnd([
      { type: 'demo.screenshot', params: { width: 300, height: 200 } },
      { type: 'test.attach', params: { name: 'photo.jpg', image: { width: 900, height: 600 } } },
    ]);
    taskId = run.taskId;
    expect(run.status).toBe('completed');
    await recordHistory(`task-${taskId}`, 'step-artifacts');
    const evs = await events(taskId);
    expect(evs.map((e) => e.seq)).toEqual(evs.map((_, i) => i + 1));
    const kinds = evs.map((e) => `${e.kind}${e.data.step_id ? `:${e.data.step_id}` : ''}`);
    expect(kinds.filter((k) => k.startsWith('step.'))).toEqual([
      'step.dispatched:s1', 'step.artifact:s1', 'step.completed:s1',
      'step.dispatched:s2', 'step.artifact:s2', 'step.completed:s2',
    ]);
    const art = evs.filter((e) => e.kind === 'step.artifact').map((e) => e.data);
    expect(art[0]).toMatchObject({ step_id: 's1', attempt: 1, kind: 'screenshot', content_type: 'image/png', width: 300, height: 200, has_thumbnail: true });
    expect(art[1]).toMatchObject({ step_id: 's2', kind: 'file', name: 'photo.jpg', content_type: 'image/jpeg', width: 900, height: 600, size: sent.get('photo.jpg')!.length });

    const list = await get(`/tasks/${taskId}/artifacts`);
    expect(list.status).toBe(200);
    expect(list.body.data.total).toBe(2);
    expect(list.body.data.list.map((a: { id: string }) => a.id)).toEqual(art.map((a) => a.artifact_id));

    // The screenshot is a PNG any decoder reads, of the size asked for.
    const png = await raw(`/tasks/${taskId}/artifacts/${art[0].artifact_id}/content`);
    expect(png.status).toBe(200);
    expect(png.type).toBe('image/png');
    expect(await sharp(png.body).metadata()).toMatchObject({ format: 'png', width: 300, height: 200 });
    // The JPEG comes back byte for byte.
    const jpg = await raw(`/tasks/${taskId}/artifacts/${art[1].artifact_id}/content`);
    expect(jpg.body.equals(sent.get('photo.jpg')!)).toBe(true);
    // Its thumbnail: WebP, inside 320 x 320, same aspect.
    const thumb = await raw(`/tasks/${taskId}/artifacts/${art[1].artifact_id}/thumbnail`);
    expect(thumb.status).toBe(200);
    expect(thumb.type).toBe('image/webp');
    expect(thumb.body.subarray(0, 4).toString('latin1')).toBe('RIFF');
    expect(await sharp(thumb.body).metadata()).toMatchObject({ format: 'webp', width: 320, height: 213 });
  }, 60_000);

  it('a failed step carries the screenshot the device took when it failed', async () => {
    const run = await runToEnd([{ type: 'demo.fail', params: { code: 'WINDOW_NOT_FOUND' } }]);
    expect(run.status).toBe('failed');
    const evs = await events(run.taskId);
    const kinds = evs.map((e) => e.kind).filter((k) => k.startsWith('step.'));
    expect(kinds).toEqual(['step.dispatched', 'step.artifact', 'step.failed']);
    const a = evs.find((e) => e.kind === 'step.artifact')!.data;
    expect(a).toMatchObject({ kind: 'screenshot', name: 'failure-s1.png', content_type: 'image/png', width: 64, height: 48 });
    const got = await raw(`/tasks/${run.taskId}/artifacts/${a.artifact_id}/content`);
    expect(got.body.equals(FAILURE_SCREEN)).toBe(true);
  }, 60_000);

  it('is the owner\'s only: another user gets 404 for the list, the content and the thumbnail', async () => {
    const stranger = await signup(sys.api);
    const [a] = (await get(`/tasks/${taskId}/artifacts`)).body.data.list;
    expect((await get(`/tasks/${taskId}/artifacts`, stranger.token)).status).toBe(404);
    for (const path of [`/tasks/${taskId}/artifacts/${a.id}/content`, `/tasks/${taskId}/artifacts/${a.id}/thumbnail`]) {
      const r = await raw(path, stranger.token);
      expect([path, r.status]).toEqual([path, 404]);
      expect(JSON.parse(r.body.toString()).code).toBe(2001);
    }
    // Under another of the owner's tasks, or with a bad id: 404 and 400.
    expect((await raw(`/tasks/${randomUUID()}/artifacts/${a.id}/content`)).status).toBe(404);
    expect((await raw(`/tasks/${taskId}/artifacts/not-a-uuid/content`)).status).toBe(400);
  }, 20_000);

  it('refuses what it cannot keep with 1001, and a step that is not the device\'s with 2001', async () => {
    held = new Promise<void>((r) => { release = r; });
    const wf = await addWorkflow(sys.api, owner.token, linear([
      { type: 'test.attach', params: { name: 'binary.bin', text: 'x', binary: [0, 1, 2, 3] } },
      { type: 'test.attach', params: { name: 'fake.png', kind: 'screenshot', text: 'not an image' } },
      { type: 'test.attach', params: { name: 'big-1.txt', text: 'x'.repeat(250_000) } },
      { type: 'test.attach', params: { name: 'big-2.txt', text: 'y'.repeat(250_000) } },
      { type: 'test.hold' },
    ]));
    const before = pcEvents.filter((e) => e.type === 'error-frame').length;
    const res = await sys.api.post('/tasks', { workflow_id: wf, device_id: device.id }, owner.token);
    const heldTask: string = res.body.data.task.id;
    const errs = await eventually(async () => {
      const e = pcEvents.filter((x): x is Extract<DeviceClientEvent, { type: 'error-frame' }> => x.type === 'error-frame').slice(before);
      return e.length >= 3 && e.map((x) => x.payload as { code: number; message: string });
    }, 20_000, 'three refusals');
    expect(errs.map((e) => e.code)).toEqual([1001, 1001, 1001]);
    expect(errs[0].message).toMatch(/type not allowed/);
    expect(errs[1].message).toMatch(/screenshot must be an image/);
    expect(errs[2].message).toMatch(/quota/);

    // Another device of the same user cannot attach to the step in flight on this one.
    const sibling = await addDevice(sys.api, owner.token);
    const step = await eventually(async () => {
      const t = await get(`/tasks/${heldTask}`);
      return t.body.data.task.steps.find((s: { step_id: string; status: string }) => s.step_id === 's5' && s.status === 'running');
    }, 20_000, 'the held step');
    const ws = new WebSocket(sys.wsUrl, { headers: { Authorization: `Bearer ${sibling.deviceToken}` } });
    const frames: { re?: string; type: string; payload: { code?: number } }[] = [];
    ws.on('message', (m) => frames.push(JSON.parse(m.toString())));
    await eventually(async () => frames.some((f) => f.type === 'hello'), 5_000, 'hello');
    ws.send(JSON.stringify({ id: 'a1', type: 'step/artifact', payload: { key: step.key, name: 'x.txt', data: Buffer.from('forged').toString('base64') } }));
    ws.send(JSON.stringify({ id: 'a2', type: 'step/artifact', payload: { key: step.key, name: 'x.txt', data: '***' } }));
    await eventually(async () => frames.filter((f) => f.type === 'error').length >= 2, 5_000, 'two errors');
    expect(frames.filter((f) => f.type === 'error').map((f) => [f.re, f.payload.code])).toEqual([['a1', 2001], ['a2', 1001]]);
    ws.close();

    release();
    await eventually(async () => (await get(`/tasks/${heldTask}`)).body.data.task.status === 'completed', 20_000, 'the held run to end');
    const list = (await get(`/tasks/${heldTask}/artifacts`)).body.data.list;
    expect(list.map((a: { name: string; step_id: string }) => [a.step_id, a.name])).toEqual([['s3', 'big-1.txt']]);
    const text = await raw(`/tasks/${heldTask}/artifacts/${list[0].id}/content`);
    expect(text.type).toBe('text/plain; charset=utf-8');
    expect(text.body.equals(sent.get('big-1.txt')!)).toBe(true);
    expect((await raw(`/tasks/${heldTask}/artifacts/${list[0].id}/thumbnail`)).status).toBe(404);
  }, 60_000);

  it('deleting the task deletes its artifacts, their bytes and their place in the quota', async () => {
    const files = await get('/files?page_size=100');
    const mine = files.body.data.list.length;
    const [a] = (await get(`/tasks/${taskId}/artifacts`)).body.data.list;
    expect((await sys.api.del(`/tasks/${taskId}`, owner.token)).status).toBe(200);
    expect((await raw(`/tasks/${taskId}/artifacts/${a.id}/content`)).status).toBe(404);
    // Two artifacts and their two thumbnails were that task's files.
    expect((await get('/files?page_size=100')).body.data.list.length).toBe(mine - 4);
    const [row] = await sys.orm.em.fork().getConnection().execute(
      'select count(*)::int as n from file_chunks where storage_key like ?', [`artifacts/${owner.userId}/%`]);
    const [left] = await sys.orm.em.fork().getConnection().execute(
      'select count(*)::int as n from files where user_id = ? and task_id is not null', [owner.userId]);
    expect(row.n).toBe(left.n); // one chunk per (small) file: none orphaned
  }, 20_000);

  it('retention: its Schedule deletes the artifacts older than ARTIFACT_RETENTION_DAYS, and only those', async () => {
    const run = await runToEnd([
      { type: 'demo.screenshot', params: { width: 60, height: 40 } },
      { type: 'test.attach', params: { name: 'fresh.txt', text: 'fresh' } },
    ]);
    const [old, fresh] = (await get(`/tasks/${run.taskId}/artifacts`)).body.data.list;
    const em = sys.orm.em.fork();
    // The screenshot came 31 days ago (the retention is 30 by default).
    await em.getConnection().execute(
      `update files set created_at = now() - interval '31 days' where id in (select file_id from step_artifacts where id = ?)`, [old.id]);
    const schedule = sys.temporal.schedule.getHandle(retentionScheduleId(sys.config.TASK_QUEUE));
    await schedule.trigger();
    const workflowId = await eventually(async () => {
      const d = await schedule.describe();
      const action = d.info.recentActions.at(-1)?.action;
      return action && 'workflow' in action && action.workflow.workflowId;
    }, 20_000, 'the retention run');
    const result = await sys.temporal.workflow.getHandle(workflowId).result();
    expect(result.deleted).toBeGreaterThanOrEqual(2); // the screenshot and its thumbnail
    await recordHistory(workflowId, 'artifact-retention');
    const left = (await get(`/tasks/${run.taskId}/artifacts`)).body.data.list;
    expect(left.map((a: { id: string }) => a.id)).toEqual([fresh.id]);
    expect((await raw(`/tasks/${run.taskId}/artifacts/${old.id}/thumbnail`)).status).toBe(404);
    const [orphans] = await em.getConnection().execute(
      `select count(*)::int as n from files f where f.task_id = ? and not exists
         (select 1 from step_artifacts a where a.file_id = f.id or a.thumbnail_file_id = f.id)`, [run.taskId]);
    expect(orphans.n).toBe(0);
  }, 60_000);

  it('an answer that comes late, on the next connection, reports the files attached on both connections, once each', async () => {
    const monitor = new MonitorClient({ url: sys.wsUrl, token: owner.token });
    await monitor.start();
    try {
      const { taskId: lateTask, resume } = await runAcrossDrop(monitor, 0);
      resume(); // the second file and the answer go on the new connection
      await monitor.waitFor(() => monitor.eventsOf(lateTask).some((e) => ended(e.kind)), 30_000, 'the run to end');

      const mine = journal.filter((j) => j.key.startsWith(`${lateTask}:`));
      expect(mine.map((j) => j.name)).toEqual(['before-drop.png', 'after-drop.png']);
      expect(new Set(mine.map((j) => j.connection)).size).toBe(2);
      // The late path: the step went out again (delivery 2) and the device was sent it only
      // once, so the re-dispatch took the answer that had come on the new connection.
      const durable = monitor.eventsOf(lateTask).filter((e) => e.seq !== undefined);
      const step = durable.filter((e) => e.kind.startsWith('step.'));
      expect(step.map((e) => `${e.kind}${e.kind === 'step.dispatched' ? `#${(e.data as { delivery: number }).delivery}` : ''}`))
        .toEqual(['step.dispatched#1', 'step.dispatched#2', 'step.artifact', 'step.artifact', 'step.completed']);
      expect(pcEvents.filter((e) => e.type === 'dispatch' && e.payload.key === mine[0].key)).toHaveLength(1);
      expect(durable.find((e) => e.kind === 'run.completed')).toBeDefined();

      // Each event is one the device's journal says it attached, with its bytes behind it.
      const reported = step.filter((e) => e.kind === 'step.artifact').map((e) => e.data as { key: string; name: string; size: number; artifact_id: string });
      expect(reported.map((a) => [a.key, a.name, a.size])).toEqual(mine.map((j) => [j.key, j.name, j.bytes.length]));
      for (const [i, a] of reported.entries()) {
        const got = await raw(`/tasks/${lateTask}/artifacts/${a.artifact_id}/content`);
        expect(got.body.equals(mine[i].bytes)).toBe(true);
      }
      const listed = (await get(`/tasks/${lateTask}/artifacts`)).body.data.list.map((a: { id: string }) => a.id).sort();
      expect(listed).toEqual(reported.map((a) => a.artifact_id).sort());
    } finally {
      await monitor.stop();
    }
  }, 60_000);

  it('a step that times out reports the files it had attached before its step.failed', async () => {
    const run = await runToEnd([{ type: 'test.attach-then-hang', timeoutMs: 1500, retry: { maxAttempts: 1 } }]);
    expect(run.status).toBe('failed');
    const evs = await events(run.taskId);
    const step = evs.filter((e) => e.kind.startsWith('step.'));
    expect(step.map((e) => e.kind)).toEqual(['step.dispatched', 'step.artifact', 'step.failed']);
    expect((step[2].data.error as { code: string }).code).toBe('STEP_TIMEOUT');
    const mine = journal.filter((j) => j.key.startsWith(`${run.taskId}:`));
    expect(mine.map((j) => j.name)).toEqual(['before-timeout.txt']);
    expect(step[1].data).toMatchObject({ key: mine[0].key, name: 'before-timeout.txt', size: mine[0].bytes.length });
    const got = await raw(`/tasks/${run.taskId}/artifacts/${step[1].data.artifact_id}/content`);
    expect(got.body.equals(mine[0].bytes)).toBe(true);
  }, 30_000);

  it('a device that moves to another API node mid-step: the answer there reports the file attached through the first', async () => {
    const monitor = new MonitorClient({ url: sys.wsUrl, token: owner.token });
    await monitor.start();
    try {
      const { taskId, resume } = await runAcrossDrop(monitor, 1);
      // The run finds the device on the other node and dispatches the key there; only then does
      // the device go on (a file for a key not dispatched through a node is refused there).
      const key = journal.find((j) => j.key.startsWith(`${taskId}:`))!.key;
      await eventually(async () => sys.nodes[1].deviceConnections.wasDispatchedTo(device.id, key), 30_000, 'the dispatch on the other node');
      resume();
      await monitor.waitFor(() => monitor.eventsOf(taskId).some((e) => ended(e.kind)), 30_000, 'the run to end');

      const mine = journal.filter((j) => j.key.startsWith(`${taskId}:`));
      expect(mine.map((j) => j.name)).toEqual(['before-drop.png', 'after-drop.png']);
      const durable = monitor.eventsOf(taskId).filter((e) => e.seq !== undefined);
      const step = durable.filter((e) => e.kind.startsWith('step.'));
      // Dispatched again once or more (the first try may still find the device's old node).
      expect(step.map((e) => e.kind).filter((k) => k !== 'step.dispatched')).toEqual(['step.artifact', 'step.artifact', 'step.completed']);
      expect(step.filter((e) => e.kind === 'step.dispatched').length).toBeGreaterThanOrEqual(2);
      // Each file the device's journal says it attached, once, with its bytes behind it.
      const reported = step.filter((e) => e.kind === 'step.artifact').map((e) => e.data as { key: string; name: string; size: number; artifact_id: string });
      expect(reported.map((a) => [a.key, a.name, a.size])).toEqual(mine.map((j) => [j.key, j.name, j.bytes.length]));
      for (const [i, a] of reported.entries()) {
        const got = await raw(`/tasks/${taskId}/artifacts/${a.artifact_id}/content`);
        expect(got.body.equals(mine[i].bytes)).toBe(true);
      }
    } finally {
      await monitor.stop();
      pcNode = 0;
    }
  }, 90_000);
});
