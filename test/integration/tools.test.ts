// The tools people use: the reference device client's outbox and on-disk store (a step
// finished while offline, or while the app was closed, is delivered once and never run
// twice), abort reaching the handler, and the CLIs (task, device, simulate) run as a person
// runs them, as child processes against the real system.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  DeviceClient,
  FileKeyStore,
  FileOutbox,
  demoHandlers,
  fileStores,
  type DeviceClientEvent,
  type StepAnswer,
  type StepHandler,
} from '../../src/clients/device-client.ts';
import { MonitorClient } from '../../src/clients/monitor-client.ts';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

const root = resolve(import.meta.dirname, '..', '..');
let sys: System;
let user: { token: string; userId: string };
let monitor: MonitorClient;
const dirs: string[] = [];
const clients: DeviceClient[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  sys = await startSystem({ nodes: 2 });
  user = await signup(sys.api);
  monitor = new MonitorClient({ url: sys.wsUrl, token: user.token });
  await monitor.start();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const c of clients) await c.stop().catch(() => undefined);
  await monitor?.stop();
  await sys?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const wsOf = (i: number) => `${sys.nodes[i].url.replace(/^http/, 'ws')}/ws`;
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'jarvis-tools-'));
  dirs.push(d);
  return d;
};

/** A step type that waits until the test opens its gate (ignoring its abort signal). */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => { open = r; });
  const handler: StepHandler = async (params) => {
    await opened;
    return { gated: true, params };
  };
  return { open, handler };
}

function device(url: string, token: string, handlers: Record<string, StepHandler>, extra: Partial<ConstructorParameters<typeof DeviceClient>[0]> = {}) {
  const events: DeviceClientEvent[] = [];
  const client = new DeviceClient({
    url, token, handlers, maxBackoffMs: 500, ...extra,
    onEvent: (e) => {
      events.push(e);
      extra.onEvent?.(e);
    },
  });
  clients.push(client);
  const of = <T extends DeviceClientEvent['type']>(type: T) => events.filter((e): e is Extract<DeviceClientEvent, { type: T }> => e.type === type);
  const answersFor = (key: string, type: 'answered' | 'queued' = 'answered') => of(type).filter((e) => e.answer.payload.key === key);
  return { client, events, of, answersFor };
}

async function submit(deviceId: string, definition: unknown, parameters: Record<string, unknown> = {}) {
  const workflowId = await addWorkflow(sys.api, user.token, definition);
  const res = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: deviceId, parameters }, user.token);
  expect(res.status).toBe(201);
  const taskId: string = res.body.data.task.id;
  monitor.subscribe(taskId);
  return taskId;
}

/**
 * Resolves once the run handed its step back and waits for the device (the mirror says so
 * after the engine's flush). A device that comes back before that point can be missed by the
 * engine until its 60-s presence recheck, so the tests reconnect after it.
 */
async function waitingForDevice(taskId: string): Promise<void> {
  await eventually(async () => {
    const t = (await sys.api.get(`/tasks/${taskId}`, user.token)).body.data.task;
    return t.status === 'pending' && t.status_reason === 'device_offline';
  }, 15_000, 'run waiting for its device');
  await new Promise((r) => setTimeout(r, 300));
}

const durable = (taskId: string) => monitor.eventsOf(taskId).filter((e) => e.seq !== undefined);
const endOf = (taskId: string) => async () => {
  await monitor.waitFor(() => durable(taskId).some((e) => ['run.completed', 'run.failed', 'run.cancelled'].includes(e.kind)), 30_000, `end of ${taskId}`);
  return durable(taskId).at(-1)!;
};

describe('the device client', () => {
  it('(a) keeps an answer finished while offline in its outbox and delivers it once on reconnect', async () => {
    const { deviceToken, id } = await addDevice(sys.api, user.token);
    const g = gate();
    // The handler finishes as soon as the socket is gone; the client reconnects when told.
    const pc = device(sys.wsUrl, deviceToken, { ...demoHandlers, 'test.gated': g.handler }, {
      initialBackoffMs: 60_000,
      onEvent: (e) => { if (e.type === 'disconnected') g.open(); },
    });
    await pc.client.start();
    const taskId = await submit(id, linear([{ type: 'test.gated', params: { n: 1 } }, { type: 'demo.echo', params: { after: 'offline' } }]));
    await eventually(async () => pc.of('dispatch').length === 1, 15_000, 'dispatch');
    const key = pc.of('dispatch')[0].payload.key;
    pc.client.drop(); // the network fails mid-step; the handler keeps running
    await eventually(async () => pc.answersFor(key, 'queued').length === 1, 5000, 'answer queued offline');
    await waitingForDevice(taskId);
    expect(pc.client.reconnectNow()).toBe(true); // the network is back

    expect((await endOf(taskId)()).kind).toBe('run.completed');
    expect(pc.client.executions.get(key)).toBe(1);
    expect(pc.answersFor(key, 'queued')).toHaveLength(1);
    expect(pc.answersFor(key)).toHaveLength(1);
    // Queued while disconnected, delivered after the second hello.
    const order = pc.events.map((e) => (e.type === 'queued' || e.type === 'answered') && e.answer.payload.key === key ? e.type : e.type === 'connected' ? 'connected' : null).filter(Boolean);
    expect(order.slice(0, 4)).toEqual(['connected', 'queued', 'connected', 'answered']);
    expect(pc.client.pendingAnswers).toBe(0);
    const completed = durable(taskId).find((e) => e.kind === 'step.completed' && e.data.step_id === 's1')!;
    expect(completed.data.output).toEqual({ gated: true, params: { n: 1 } });
    await pc.client.stop();
  });

  it('(b) keeps finished keys and undelivered answers on disk across a restart', async () => {
    const path = join(tempDir(), 'device.jsonl');
    const { deviceToken, id } = await addDevice(sys.api, user.token);
    const runs = new Map<string, number>(); // handler executions across all the app's lives
    const counted = (h: StepHandler): StepHandler => async (params, ctx) => {
      runs.set(ctx.key, (runs.get(ctx.key) ?? 0) + 1);
      return h(params, ctx);
    };

    // Life 1: a step starts, the app is closed mid-step; the step finishes while it is closed.
    const g1 = gate();
    const files1 = fileStores(path);
    const life1 = device(wsOf(0), deviceToken, { ...demoHandlers, 'test.gated': counted(g1.handler) }, { store: files1.store, outbox: files1.outbox });
    await life1.client.start();
    const taskA = await submit(id, linear([{ type: 'test.gated', params: { run: 'A' } }]));
    await eventually(async () => life1.of('dispatch').length === 1, 15_000, 'dispatch A');
    const keyA = life1.of('dispatch')[0].payload.key;
    const stopping = life1.client.stop({ graceMs: 10_000 });
    await eventually(async () => life1.of('disconnected').length === 1, 5000, 'socket closed');
    g1.open();
    await stopping;
    files1.close();
    expect(life1.answersFor(keyA, 'queued')).toHaveLength(1);
    expect(life1.answersFor(keyA)).toHaveLength(0);
    // Both files hold it.
    expect(readFileSync(path, 'utf8')).toContain(keyA);
    expect(readFileSync(path.replace(/\.jsonl$/, '.outbox.jsonl'), 'utf8')).toContain(keyA);

    // Life 2: a new client on the same files delivers the answer once; the handler does not run.
    await waitingForDevice(taskA);
    const files2 = fileStores(path);
    expect(files2.store.get(keyA)).toEqual({ type: 'step/result', payload: { key: keyA, output: { gated: true, params: { run: 'A' } } } });
    expect(files2.outbox.list().map((a) => a.payload.key)).toEqual([keyA]);
    const g2 = gate();
    const life2 = device(wsOf(0), deviceToken, { ...demoHandlers, 'test.gated': counted(g2.handler) }, { store: files2.store, outbox: files2.outbox });
    await life2.client.start();
    expect((await endOf(taskA)()).kind).toBe('run.completed');
    expect(life2.answersFor(keyA)).toHaveLength(1);
    expect(life2.of('dispatch').filter((e) => e.payload.key === keyA && !e.replayed)).toHaveLength(0);
    expect(files2.outbox.size).toBe(0);
    expect(runs.get(keyA)).toBe(1);

    // Again, and this time the app comes back on the other API node, which never dispatched the
    // key: the re-dispatch reaches the device and is answered from the store, not run again.
    const taskB = await submit(id, linear([{ type: 'test.gated', params: { run: 'B' } }, { type: 'demo.echo', params: {} }]));
    await eventually(async () => life2.of('dispatch').some((e) => e.payload.task_id === taskB), 15_000, 'dispatch B');
    const keyB = life2.of('dispatch').find((e) => e.payload.task_id === taskB)!.payload.key;
    const stopping2 = life2.client.stop({ graceMs: 10_000 });
    await eventually(async () => life2.of('disconnected').length === 1, 5000, 'socket closed');
    g2.open();
    await stopping2;
    files2.close();

    await waitingForDevice(taskB);
    const files3 = fileStores(path);
    const life3 = device(wsOf(1), deviceToken, { ...demoHandlers, 'test.gated': counted(gate().handler) }, { store: files3.store, outbox: files3.outbox });
    await life3.client.start();
    expect((await endOf(taskB)()).kind).toBe('run.completed');
    const replay = life3.of('dispatch').filter((e) => e.payload.key === keyB);
    expect(replay.map((e) => e.replayed)).toEqual([true]);
    expect(life3.client.executions.get(keyB) ?? 0).toBe(0);
    expect(runs.get(keyB)).toBe(1);
    const completedB = durable(taskB).find((e) => e.kind === 'step.completed' && e.data.step_id === 's1')!;
    expect(completedB.data.output).toEqual({ gated: true, params: { run: 'B' } });
    await life3.client.stop();
    files3.close();
  });

  it('(b) the on-disk store keeps the newest keys only and survives a torn last line', () => {
    const path = join(tempDir(), 'keys.jsonl');
    const answer = (key: string): StepAnswer => ({ type: 'step/result', payload: { key, output: { key } } });
    const store = new FileKeyStore(path, { max: 5, fsync: false });
    for (let i = 1; i <= 23; i++) store.set(`k${i}`, answer(`k${i}`));
    store.close();
    // Compacted whenever it passed twice the bound.
    expect(readFileSync(path, 'utf8').trim().split('\n').length).toBeLessThanOrEqual(10);
    writeFileSync(path, `${readFileSync(path, 'utf8')}{"key":"torn","ans`); // a crash mid-write
    const again = new FileKeyStore(path, { max: 5, fsync: false });
    expect(again.size).toBe(5);
    expect(again.get('k23')).toEqual(answer('k23'));
    expect(again.get('k19')).toEqual(answer('k19'));
    expect(again.get('k18')).toBeUndefined();
    again.set('k24', answer('k24'));
    again.close();
    expect(new FileKeyStore(path, { max: 5 }).get('k24')).toEqual(answer('k24'));

    const outboxPath = join(tempDir(), 'outbox.jsonl');
    const outbox = new FileOutbox(outboxPath, { fsync: false });
    outbox.add(answer('a'));
    outbox.add(answer('b'));
    outbox.remove('a');
    outbox.close();
    expect(new FileOutbox(outboxPath).list()).toEqual([answer('b')]);
  });

  it('(c) cancelling a run aborts the handler\'s signal and the device reports ABORTED', async () => {
    const { deviceToken, id } = await addDevice(sys.api, user.token);
    const signals = new Map<string, AbortSignal>();
    const pc = device(sys.wsUrl, deviceToken, {
      ...demoHandlers,
      'demo.sleep': async (params, ctx) => {
        signals.set(ctx.key, ctx.signal);
        return demoHandlers['demo.sleep'](params, ctx);
      },
    });
    await pc.client.start();
    const taskId = await submit(id, linear([{ type: 'demo.sleep', params: { ms: 20_000 } }]));
    await eventually(async () => pc.of('dispatch').length === 1, 15_000, 'dispatch');
    const key = pc.of('dispatch')[0].payload.key;
    expect(signals.get(key)!.aborted).toBe(false);
    expect((await sys.api.post(`/tasks/${taskId}/cancel`, { reason: 'from the test' }, user.token)).status).toBe(202);
    await eventually(async () => signals.get(key)!.aborted, 10_000, 'signal aborted');
    const answer = await eventually(async () => pc.answersFor(key)[0]?.answer, 10_000, 'ABORTED answer');
    expect(answer).toMatchObject({ type: 'step/error', payload: { key, error: { code: 'ABORTED' } } });
    expect((await endOf(taskId)()).kind).toBe('run.cancelled');
    expect(pc.of('control').map((e) => e.action)).toEqual(['abort']);
    await pc.client.stop();
  });
});

// ---- the CLIs, as child processes ---------------------------------------------------------------

function cli(script: string, args: string[]) {
  let stdout = '';
  let stderr = '';
  const child = spawn(process.execPath, [resolve(root, 'scripts', script), ...args], {
    cwd: root, env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

const apiBase = () => `${sys.url}/api/v1`;

describe('the command-line tools', () => {
  it('(d) task submit prints the run\'s events in order and exits 0; status and list show it', async () => {
    const { deviceToken, id } = await addDevice(sys.api, user.token);
    const pc = device(sys.wsUrl, deviceToken, demoHandlers);
    await pc.client.start();
    const wf = await addWorkflow(sys.api, user.token, linear([
      { type: 'demo.echo', params: { text: 'hi {{params.who}}' } },
      { type: 'demo.sleep', params: { ms: 300 } },
    ]));
    const run = cli('task.ts', ['submit', '--workflow', wf, '--device', id, '--params', '{"who":"cli"}', '--priority', 'high', '--api', apiBase(), '--token', user.token]);
    expect(await run.exited).toBe(0);
    const lines = run.out().trim().split('\n');
    const taskId = /^task (\S+) submitted/.exec(lines[0])?.[1];
    expect(taskId).toBeDefined();
    const events = lines.filter((l) => /^\d+ /.test(l)).map((l) => l.split(' '));
    expect(events.map((e) => e[0])).toEqual(events.map((_, i) => String(i + 1)));
    expect(events.map((e) => e[1])).toEqual([
      'run.pending', 'run.started', 'step.dispatched', 'step.completed', 'step.dispatched', 'step.completed', 'run.completed',
    ]);
    expect(events.map((e) => e[2])).toEqual(['-', '-', 's1', 's1', 's2', 's2', '-']);
    expect(run.out()).toContain('output={"echo":{"text":"hi cli"}}');
    expect(run.out()).toMatch(/^- step\.progress s2 \d+% slept/m); // live progress, no seq

    // status and list show it; a failing run exits 1; a bad command line exits 2 with a message.
    const failWf = await addWorkflow(sys.api, user.token, linear([{ type: 'demo.fail', params: { code: 'NOPE' } }]));
    const status = cli('task.ts', ['status', taskId!, '--api', apiBase(), '--token', user.token]);
    const list = cli('task.ts', ['list', '--device', id, '--api', apiBase(), '--token', user.token]);
    const failed = cli('task.ts', ['submit', '--workflow', failWf, '--device', id, '--api', apiBase(), '--token', user.token, '--no-progress']);
    const bad = cli('task.ts', ['submit', '--device', id]);
    expect(await status.exited).toBe(0);
    expect(status.out()).toMatch(/status\s+completed/);
    expect(status.out()).toContain('priority  high');
    expect(await list.exited).toBe(0);
    expect(list.out()).toMatch(new RegExp(`^${taskId}\\s+completed`, 'm'));
    expect(await failed.exited).toBe(1);
    expect(failed.out()).toMatch(/^\d+ run\.failed - NOPE: /m);
    expect(await bad.exited).toBe(2);
    expect(bad.err()).toContain('--workflow');
    await pc.client.stop();
  });

  it('(d) device connects with the demo handlers, runs a step, and stops on SIGINT with exit 0', async () => {
    const { deviceToken, id } = await addDevice(sys.api, user.token);
    const store = join(tempDir(), 'pc.jsonl');
    const dev = cli('device.ts', ['--token', deviceToken, '--url', sys.wsUrl, '--store', store]);
    await eventually(async () => dev.out().includes(' connected connection='), 15_000, `device connected (${dev.out()}${dev.err()})`);
    const taskId = await submit(id, linear([{ type: 'demo.echo', params: { from: 'device.ts' } }]));
    expect((await endOf(taskId)()).kind).toBe('run.completed');
    await eventually(async () => dev.out().includes(`result ${taskId}:s1:1 ok`), 5000, 'result line');
    expect(dev.out()).toContain(`dispatch ${taskId}:s1:1 demo.echo attempt=1`);
    expect(readFileSync(store, 'utf8')).toContain(`${taskId}:s1:1`);
    dev.child.kill('SIGINT');
    expect(await dev.exited).toBe(0);
    expect(dev.out()).toContain('stopped');

    const refused = cli('device.ts', ['--token', 'dev_not-a-real-token', '--url', sys.wsUrl, '--memory']);
    const missing = cli('device.ts', []);
    expect(await refused.exited).toBe(1);
    expect(refused.err()).toContain('HTTP 401');
    expect(await missing.exited).toBe(2);
    expect(missing.err()).toContain('--token');
  });

  it('(d) simulate runs devices under faults, and no step key runs twice', async () => {
    const sim = cli('simulate.ts', [
      '--devices', '5', '--duration-s', '10', '--every-s', '2', '--latency-ms', '20..120', '--fail-rate', '0.1', '--disconnect-rate', '0.1',
      '--api', apiBase(), '--url', sys.wsUrl, '--token', user.token,
    ]);
    const idsLine = await eventually(async () => /^\S+ devices (.+)$/m.exec(sim.out())?.[1], 20_000, `simulated devices (${sim.out()}${sim.err()})`);
    const ids = idsLine.trim().split(' ');
    expect(ids).toHaveLength(5);
    const wf = await addWorkflow(sys.api, user.token, {
      nodes: [
        { id: 'start', type: 'start' },
        ...[1, 2].map((i) => ({ id: `s${i}`, type: 'sim.work', params: { i }, retry: { maxAttempts: 6, initialIntervalMs: 100 } })),
        { id: 'end', type: 'end' },
      ],
      edges: [{ from: 'start', to: 's1' }, { from: 's1', to: 's2' }, { from: 's2', to: 'end' }],
    });
    const tasks: string[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await sys.api.post('/tasks', { workflow_id: wf, device_id: ids[i % ids.length] }, user.token);
      expect(res.status).toBe(201);
      tasks.push(res.body.data.task.id);
    }
    expect(await sim.exited).toBe(0);
    const final = /final (.+)$/m.exec(sim.out())?.[1];
    expect(final).toBeDefined();
    const stats = Object.fromEntries(final!.split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
    expect(stats).toMatchObject({ devices: 5, duplicateExecutions: 0 });
    // How far the runs got depends on the machine's load; that they moved at all is what counts.
    expect(stats.dispatched).toBeGreaterThanOrEqual(2);
    expect(stats.completed).toBeGreaterThanOrEqual(2);
    expect(sim.out()).not.toContain('DUPLICATE');
    // Retryable failures were retried; runs whose device dropped mid-step may still wait for it.
    const list = (await sys.api.get(`/tasks?workflow_id=${wf}&page_size=100`, user.token)).body.data.list as { status: string }[];
    expect(list).toHaveLength(tasks.length);
    expect(list.filter((t) => t.status === 'failed' || t.status === 'cancelled')).toEqual([]);
    expect(list.filter((t) => t.status === 'completed').length).toBeGreaterThan(0);
  });
});
