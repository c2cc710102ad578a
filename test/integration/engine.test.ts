// The task-run engine on the real Temporal dev server and PostgreSQL: lanes and priority,
// control nodes, retries, disconnects, offline devices, worker restarts, reconciliation.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MonitorClient } from '../../src/clients/monitor-client.ts';
import { DeviceLanes } from '../../src/domain/device-lanes.ts';
import { acquire, release } from '../../src/db/lanes.ts';
import { dbOf, sql } from '../../src/db/sql.ts';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { connectTestDevice, type TestDevice } from '../helpers/devices.ts';
import { recordHistory } from '../helpers/histories.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let user: { token: string; userId: string };
let monitor: MonitorClient;

beforeAll(async () => {
  sys = await startSystem({ env: { DEVICE_OFFLINE_TIMEOUT_MS: '4000' } });
  user = await signup(sys.api);
  monitor = new MonitorClient({ url: sys.wsUrl, token: user.token });
  await monitor.start();
});

const devices: TestDevice[] = [];
afterAll(async () => {
  for (const d of devices) await d.client.stop();
  await monitor?.stop();
  await sys?.stop();
});

async function newDevice(connect = true) {
  const d = await addDevice(sys.api, user.token);
  const dev = connect ? await connectTestDevice(sys.wsUrl, d.deviceToken) : null;
  if (dev) devices.push(dev);
  return { ...d, dev };
}

async function submit(deviceId: string, definition: unknown, extra: Record<string, unknown> = {}) {
  const workflowId = await addWorkflow(sys.api, user.token, definition);
  const res = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: deviceId, ...extra }, user.token);
  expect(res.status).toBe(201);
  const taskId: string = res.body.data.task.id;
  monitor.subscribe(taskId);
  return taskId;
}

const record = (taskId: string, name: string) => recordHistory(`task-${taskId}`, name);
const kinds = (taskId: string) => monitor.eventsOf(taskId).filter((e) => e.seq !== undefined).map((e) => e.kind);
const isEnded = (taskId: string) => kinds(taskId).some((k) => k === 'run.completed' || k === 'run.failed' || k === 'run.cancelled');
const waitEnd = (taskId: string, ms = 30_000) => monitor.waitFor(() => isEnded(taskId), ms, `end of ${taskId}`);
const event = (taskId: string, kind: string) => monitor.eventsOf(taskId).find((e) => e.kind === kind);
const mirror = async (taskId: string) => (await sys.api.get(`/tasks/${taskId}`, user.token)).body.data.task;
const mirrored = (taskId: string, status: string) =>
  eventually(async () => {
    const t = await mirror(taskId);
    return t.status === status && t;
  }, 10_000, `task ${taskId} ${status} in PostgreSQL`);

describe('device lanes', () => {
  it('runs one task at a time per device, high priority first, then submission order', async () => {
    const { id, dev } = await newDevice();
    const blocker = await submit(id, linear([{ type: 'demo.sleep', params: { ms: 4000 } }]), { priority: 'low' });
    await eventually(async () => dev!.dispatches(blocker).length === 1, 15_000, 'blocker running');
    const low = await submit(id, linear([{ type: 'demo.echo', params: { who: 'low' } }]), { priority: 'low' });
    const medium = await submit(id, linear([{ type: 'demo.echo', params: { who: 'medium' } }]));
    const high = await submit(id, linear([{ type: 'demo.echo', params: { who: 'high' } }]), { priority: 'high' });

    await monitor.waitFor(() => [low, medium, high].every((t) => kinds(t).includes('run.pending') && event(t, 'run.pending')), 10_000);
    // While the blocker holds the device, the queue is high, medium, low; a queued run says why
    // once its lane's grace has passed (it starts as `queued`, then `device_busy`).
    await eventually(async () => {
      const [h, m, l] = await Promise.all([high, medium, low].map(mirror));
      return h.queue_position === 1 && m.queue_position === 2 && l.queue_position === 3 && l.status_reason === 'device_busy';
    }, 10_000, 'queue positions 1, 2, 3, the last one device_busy');

    for (const t of [blocker, low, medium, high]) await waitEnd(t);
    await record(low, 'lane-queued');
    const order = dev!.dispatches().map((d) => d.task_id).filter((t) => [blocker, low, medium, high].includes(t));
    expect(order).toEqual([blocker, high, medium, low]);
    // Never two at once: each run starts its step after the previous run completed.
    const at = (t: string, kind: string) => event(t, kind)!.at;
    expect(at(high, 'step.dispatched')).toBeGreaterThanOrEqual(at(blocker, 'run.completed'));
    expect(at(medium, 'step.dispatched')).toBeGreaterThanOrEqual(at(high, 'run.completed'));
    expect(at(low, 'step.dispatched')).toBeGreaterThanOrEqual(at(medium, 'run.completed'));
  });

  it('a cancelled run waiting in the queue leaves it', async () => {
    const { id, dev } = await newDevice();
    const first = await submit(id, linear([{ type: 'demo.sleep', params: { ms: 1500 } }]));
    await eventually(async () => dev!.dispatches(first).length === 1, 15_000, 'first running');
    const second = await submit(id, linear([{ type: 'demo.echo', params: {} }]));
    await monitor.waitFor(() => event(second, 'run.pending')?.data.reason === 'device_busy' || kinds(second).filter((k) => k === 'run.pending').length > 1, 10_000);
    expect((await sys.api.post(`/tasks/${second}/cancel`, {}, user.token)).status).toBe(202);
    await waitEnd(second);
    expect(kinds(second).at(-1)).toBe('run.cancelled');
    expect(dev!.dispatches(second)).toHaveLength(0);
    const third = await submit(id, linear([{ type: 'demo.echo', params: {} }]));
    await waitEnd(first);
    await waitEnd(third);
    expect(kinds(third).at(-1)).toBe('run.completed');
  });

  it('a free device is granted at submission: no grant signal', async () => {
    const { id } = await newDevice();
    const taskId = await submit(id, linear([{ type: 'demo.echo', params: {} }]));
    await waitEnd(taskId);
    const history = await sys.temporal.workflow.getHandle(`task-${taskId}`).fetchHistory();
    // No lane grant. (A deviceOnline may come: the device's connection wakes the runs on the
    // device once its presence is written, which on a busy machine can be after this submission.)
    const signals = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes)
      .map((e) => e.workflowExecutionSignaledEventAttributes!.signalName);
    expect(signals.filter((name) => name !== 'deviceOnline')).toEqual([]);
    // Released by the run's last write (monitors see the end first: it is in history once scheduled).
    await eventually(async () => {
      const rows = await sys.orm.em.fork().execute('select holder_task_id from device_lanes where device_id = ?', [id]);
      return rows.length === 1 && rows[0].holder_task_id === null;
    }, 10_000, 'the lane released');
  });

  it('concurrent asks for one free device grant it to exactly one run, the rest queue in order', async () => {
    const { id } = await newDevice(false);
    const lanes = new DeviceLanes(sys.orm.em, sys.temporal);
    const tickets = Array.from({ length: 20 }, (_, i) => ({
      deviceId: id, taskId: crypto.randomUUID(), workflowId: `task-never-started-${i}`,
      priorityRank: (i % 3) + 1, submittedAt: 1_000 + i,
    }));
    const answers = await Promise.all(tickets.map((t) => lanes.acquire(t)));
    expect(answers.filter((a) => a.granted)).toHaveLength(1);
    const holder = tickets[answers.findIndex((a) => a.granted)];
    expect(await lanes.position(id, holder.taskId)).toBe(0);
    // Asking again changes nothing.
    expect(await lanes.acquire(holder)).toEqual({ granted: true });
    const waiting = tickets.filter((t) => t !== holder)
      .sort((a, b) => b.priorityRank - a.priorityRank || a.submittedAt - b.submittedAt);
    const positions = await Promise.all(waiting.map((t) => lanes.position(id, t.taskId)));
    expect(positions).toEqual(waiting.map((_, i) => i + 1));
    // The holder's workflow never existed and it has no task row: a release walks past every
    // such run (none can be told) until the queue is empty.
    await lanes.release(id, holder.taskId);
    const rows = await sys.orm.em.fork().execute('select holder_task_id from device_lanes where device_id = ?', [id]);
    expect(rows).toEqual([{ holder_task_id: null }]);
    expect(await sys.orm.em.fork().execute('select 1 from lane_requests where device_id = ?', [id])).toHaveLength(0);
  });

  it('a free device with nobody waiting is granted in one write of its lane, without a queue entry', async () => {
    const { id } = await newDevice(false);
    const db = await dbOf(sys.orm);
    const ticket = (i: number) => ({ deviceId: id, taskId: crypto.randomUUID(), workflowId: `task-never-started-${i}`, priorityRank: 2, submittedAt: 1_000 + i });
    // PostgreSQL's own count of the rows written, table by table, before and after the ask
    // (the backend's counts not yet reported may include its earlier transactions').
    const written = sql`select relname, n_tup_ins::int as ins, n_tup_upd::int as upd, n_tup_del::int as del
      from pg_stat_xact_user_tables where relname in ('device_lanes', 'lane_requests') order by relname`;
    const ask = (t: ReturnType<typeof ticket>) => db.transaction(async (tx) => {
      const [, before, [answer], after] = await tx.run(['begin', written, acquire(t), written, 'commit']);
      const rows = after.map((r, i) => ({ relname: r.relname, ins: Number(r.ins) - Number(before[i].ins), upd: Number(r.upd) - Number(before[i].upd), del: Number(r.del) - Number(before[i].del) }));
      return { answer: answer.answer, rows };
    });
    const first = ticket(1);
    await ask(first); // the lane's row is created by the device's first ask
    await new DeviceLanes(sys.orm.em, sys.temporal).release(id, first.taskId);
    const free = ticket(2);
    expect(await ask(free)).toEqual({
      answer: 'granted',
      rows: [{ relname: 'device_lanes', ins: 0, upd: 1, del: 0 }, { relname: 'lane_requests', ins: 0, upd: 0, del: 0 }],
    });
    expect(await db.all(sql`select holder_task_id, holder_workflow_id, holder_notified from device_lanes where device_id = ${id}`))
      .toEqual([{ holder_task_id: free.taskId, holder_workflow_id: free.workflowId, holder_notified: true }]);
    // Held: the next one queues, and gets the device at the release (not told yet: never started).
    const next = ticket(3);
    expect((await ask(next)).answer).toBe('queued');
    await db.all(release(id, free.taskId));
    expect(await db.all(sql`select holder_task_id, holder_notified from device_lanes where device_id = ${id}`))
      .toEqual([{ holder_task_id: next.taskId, holder_notified: false }]);
    expect(await db.all(sql`select 1 from lane_requests where device_id = ${id}`)).toHaveLength(0);
  });
});

describe('control nodes', () => {
  it('branches on a condition, repeats a for-each loop and waits on a durable timer', async () => {
    const { id, dev } = await newDevice();
    const definition = {
      nodes: [
        { id: 'start', type: 'start' },
        { id: 'probe', type: 'demo.echo', params: { ok: '{{params.go}}', items: '{{params.items}}' } },
        { id: 'check', type: 'condition', params: { if: { all: [{ var: 'probe.echo.ok', eq: true }, { var: 'params.items', exists: true }] } } },
        { id: 'each', type: 'loop', params: { items: '{{params.items}}' } },
        { id: 'visit', type: 'demo.echo', params: { item: '{{loop.item}}', index: '{{loop.index}}' } },
        { id: 'pause', type: 'wait', params: { durationMs: 300 } },
        { id: 'no', type: 'demo.echo', params: { branch: 'false' } },
        { id: 'end', type: 'end' },
      ],
      edges: [
        { from: 'start', to: 'probe' }, { from: 'probe', to: 'check' },
        { from: 'check', to: 'each', when: 'true' }, { from: 'check', to: 'no', when: 'false' },
        { from: 'each', to: 'visit', when: 'body' }, { from: 'visit', to: 'each' },
        { from: 'each', to: 'pause', when: 'done' }, { from: 'pause', to: 'end' }, { from: 'no', to: 'end' },
      ],
    };
    const yes = await submit(id, definition, { parameters: { go: true, items: ['a', 'b', 'c'] } });
    await waitEnd(yes);
    expect(kinds(yes).at(-1)).toBe('run.completed');
    const visits = dev!.dispatches(yes).filter((d) => d.step_id === 'visit');
    expect(visits.map((d) => d.params)).toEqual([{ item: 'a', index: 0 }, { item: 'b', index: 1 }, { item: 'c', index: 2 }]);
    // Each visit has a key of its own, so the device never mistakes one for another.
    expect(new Set(visits.map((d) => d.key)).size).toBe(3);
    expect(dev!.dispatches(yes).some((d) => d.step_id === 'no')).toBe(false);
    const result = (await mirrored(yes, 'completed')).result;
    expect(result.each).toEqual({ iterations: 3 });
    expect(result.pause).toEqual({ waited_ms: 300 });
    await record(yes, 'loop-condition-wait');

    const no = await submit(id, definition, { parameters: { go: false, items: [] } });
    await waitEnd(no);
    expect(dev!.dispatches(no).map((d) => d.step_id)).toEqual(['probe', 'no']);
  });

  const approvalFlow = {
    nodes: [
      { id: 'start', type: 'start' },
      { id: 'ask', type: 'approval', params: { message: 'Send the report?', timeoutMs: 1500, onTimeout: 'reject' } },
      { id: 'send', type: 'demo.echo', params: { sent: true } },
      { id: 'skip', type: 'demo.echo', params: { sent: false } },
      { id: 'end', type: 'end' },
    ],
    edges: [
      { from: 'start', to: 'ask' }, { from: 'ask', to: 'send', when: 'approved' }, { from: 'ask', to: 'skip', when: 'rejected' },
      { from: 'send', to: 'end' }, { from: 'skip', to: 'end' },
    ],
  };

  it('waits at an approval node; approve and reject follow their edges, with who decided', async () => {
    const { id, dev } = await newDevice();
    const approved = await submit(id, { ...approvalFlow, nodes: approvalFlow.nodes.map((n) => n.id === 'ask' ? { ...n, params: { ...n.params, timeoutMs: 60_000 } } : n) });
    await monitor.waitFor(() => kinds(approved).includes('run.waiting_approval'), 15_000, 'waiting approval');
    expect(event(approved, 'run.waiting_approval')!.data.message).toBe('Send the report?');
    await eventually(async () => (await mirror(approved)).status_reason === 'waiting_approval', 10_000, 'mirror waiting');
    const res = await sys.api.post(`/tasks/${approved}/approval`, { approved: true, comment: 'go' }, user.token);
    expect(res.status).toBe(202);
    await waitEnd(approved);
    expect(event(approved, 'run.approval_decided')!.data).toMatchObject({ approved: true, by: user.userId, comment: 'go', timed_out: false });
    expect(dev!.dispatches(approved).map((d) => d.step_id)).toEqual(['send']);
    await record(approved, 'approval-approved');

    const rejected = await submit(id, { ...approvalFlow, nodes: approvalFlow.nodes.map((n) => n.id === 'ask' ? { ...n, params: { ...n.params, timeoutMs: 60_000 } } : n) });
    await monitor.waitFor(() => kinds(rejected).includes('run.waiting_approval'), 15_000);
    await eventually(async () => (await mirror(rejected)).status_reason === 'waiting_approval', 10_000, 'mirror waiting');
    expect((await sys.api.post(`/tasks/${rejected}/approval`, { approved: false }, user.token)).status).toBe(202);
    await waitEnd(rejected);
    expect(dev!.dispatches(rejected).map((d) => d.step_id)).toEqual(['skip']);
    // No approval pending any more: 409.
    const late = await sys.api.post(`/tasks/${rejected}/approval`, { approved: true }, user.token);
    expect(late.status).toBe(409);
    expect(late.body.code).toBe(3001);
  });

  it('an approval that times out takes its onTimeout path; "fail" fails the run', async () => {
    const { id, dev } = await newDevice();
    const timedOut = await submit(id, approvalFlow);
    await waitEnd(timedOut);
    expect(event(timedOut, 'run.approval_decided')!.data).toMatchObject({ approved: false, timed_out: true });
    expect(dev!.dispatches(timedOut).map((d) => d.step_id)).toEqual(['skip']);
    await record(timedOut, 'approval-timeout');

    const failing = await submit(id, {
      nodes: [{ id: 'start', type: 'start' }, { id: 'ask', type: 'approval', params: { timeoutMs: 1000, onTimeout: 'fail' } }, { id: 'end', type: 'end' }],
      edges: [{ from: 'start', to: 'ask' }, { from: 'ask', to: 'end' }],
    });
    await waitEnd(failing);
    expect(kinds(failing).at(-1)).toBe('run.failed');
    expect((await mirrored(failing, 'failed')).error).toMatchObject({ code: 'APPROVAL_TIMEOUT', step_id: 'ask' });
  });
});

describe('retries', () => {
  it('retries a step whose error the device marks retryable, with a new key per attempt', async () => {
    const { id, dev } = await newDevice();
    const taskId = await submit(id, linear([{ type: 'test.flaky', params: { times: 2 }, retry: { maxAttempts: 3, initialIntervalMs: 100 } }]));
    await waitEnd(taskId);
    expect(kinds(taskId)).toEqual([
      'run.pending', 'run.started',
      'step.dispatched', 'step.failed', 'step.dispatched', 'step.failed', 'step.dispatched', 'step.completed',
      'run.completed',
    ]);
    expect(dev!.dispatches(taskId).map((d) => d.key)).toEqual([1, 2, 3].map((a) => `${taskId}:s1:${a}`));
    const task = await mirrored(taskId, 'completed');
    expect(task.steps.map((s: { attempt: number; status: string }) => [s.attempt, s.status])).toEqual([[1, 'failed'], [2, 'failed'], [3, 'completed']]);
    await record(taskId, 'step-retried');
  });

  it('a device step that shows no progress for heartbeatTimeoutMs is aborted and retried', async () => {
    const { id, dev } = await newDevice();
    const taskId = await submit(id, {
      nodes: [
        { id: 'start', type: 'start' },
        { id: 'quiet', type: 'test.silent', params: { ms: 30_000 }, heartbeatTimeoutMs: 1000, retry: { maxAttempts: 2, initialIntervalMs: 100 } },
        { id: 'busy', type: 'demo.sleep', params: { ms: 2500 }, heartbeatTimeoutMs: 1000 },
        { id: 'end', type: 'end' },
      ],
      edges: [{ from: 'start', to: 'quiet' }, { from: 'quiet', to: 'busy' }, { from: 'busy', to: 'end' }],
    });
    await waitEnd(taskId);
    expect(kinds(taskId)).toEqual(['run.pending', 'run.started', 'step.dispatched', 'step.failed', 'step.dispatched', 'step.failed', 'run.failed']);
    const failed = monitor.eventsOf(taskId).filter((e) => e.kind === 'step.failed');
    expect(failed.map((e) => [(e.data.error as { code: string }).code, e.data.will_retry])).toEqual([
      ['STEP_HEARTBEAT_TIMEOUT', true], ['STEP_HEARTBEAT_TIMEOUT', false],
    ]);
    expect(dev!.events.filter((e) => e.type === 'control' && e.action === 'abort')).toHaveLength(2);
    await record(taskId, 'heartbeat-timeout');

    // A step that reports progress more often than that is left alone.
    const ok = await submit(id, linear([{ type: 'demo.sleep', params: { ms: 2500 }, heartbeatTimeoutMs: 1000 }]));
    await waitEnd(ok);
    expect(kinds(ok).at(-1)).toBe('run.completed');
  });

  it('does not retry an error the device marks permanent', async () => {
    const { id, dev } = await newDevice();
    const taskId = await submit(id, linear([{ type: 'test.flaky', params: { times: 1, retryable: false, code: 'BAD_INPUT' } }]));
    await waitEnd(taskId);
    expect(dev!.dispatches(taskId)).toHaveLength(1);
    expect((await mirrored(taskId, 'failed')).error).toMatchObject({ code: 'BAD_INPUT', step_id: 's1' });
  });

  it('POST /tasks/:id/retry from the failed step keeps earlier outputs and skips finished steps', async () => {
    const { id, dev } = await newDevice();
    const failed = await submit(id, linear([
      { type: 'demo.echo', params: { first: 1 } },
      { type: 'test.flaky', params: { times: 1, retryable: false, tag: `retry-${Date.now()}` } },
      { type: 'demo.echo', params: { from: '{{s1.echo.first}}' } },
    ]));
    await waitEnd(failed);
    await mirrored(failed, 'failed');
    const retry = await sys.api.post(`/tasks/${failed}/retry`, { from_failed_step: true }, user.token);
    expect(retry.status).toBe(201);
    const again: string = retry.body.data.task.id;
    monitor.subscribe(again);
    await waitEnd(again);
    expect(kinds(again).at(-1)).toBe('run.completed');
    expect(dev!.dispatches(again).map((d) => d.step_id)).toEqual(['s2', 's3']);
    expect(dev!.dispatches(again)[1].params).toEqual({ from: 1 });
    await record(again, 'retry-from-failed-step');
    const notAllowed = await sys.api.post(`/tasks/${again}/retry`, {}, user.token);
    expect(notAllowed.status).toBe(409);
  });
});

describe('devices coming and going', () => {
  it('a run for an offline device waits (pending, device_offline) and starts when it connects', async () => {
    const { id, deviceToken } = await newDevice(false);
    const taskId = await submit(id, linear([{ type: 'demo.echo', params: { hi: 1 } }]));
    await monitor.waitFor(() => monitor.eventsOf(taskId).some((e) => e.kind === 'run.pending' && e.data.reason === 'device_offline'), 15_000, 'device_offline');
    await eventually(async () => (await mirror(taskId)).status_reason === 'device_offline', 10_000, 'mirror device_offline');
    const dev = await connectTestDevice(sys.wsUrl, deviceToken);
    devices.push(dev);
    await waitEnd(taskId);
    expect(kinds(taskId).at(-1)).toBe('run.completed');
    expect(event(taskId, 'run.started')!.data.after).toBe('device_offline');
    await record(taskId, 'offline-wait');
  });

  it('fails the run with DEVICE_OFFLINE_TIMEOUT when the device stays away', async () => {
    const { id } = await newDevice(false);
    const taskId = await submit(id, linear([{ type: 'demo.echo', params: {} }]));
    await waitEnd(taskId, 20_000);
    expect((await mirrored(taskId, 'failed')).error.code).toBe('DEVICE_OFFLINE_TIMEOUT');
  });

  it('a device that drops mid-step and comes back does the step exactly once', async () => {
    const { id, dev } = await newDevice();
    const taskId = await submit(id, linear([{ type: 'demo.sleep', params: { ms: 1200 } }, { type: 'demo.echo', params: {} }]));
    await eventually(async () => dev!.dispatches(taskId).length === 1, 15_000, 'dispatch');
    dev!.client.drop(); // the handler keeps running; its answer waits in the outbox
    await waitEnd(taskId, 45_000);
    expect(kinds(taskId).at(-1)).toBe('run.completed');
    const key = `${taskId}:s1:1`;
    expect(dev!.client.executions.get(key)).toBe(1);
    const s1 = (await mirrored(taskId, 'completed')).steps.filter((s: { step_id: string }) => s.step_id === 's1');
    expect(s1).toHaveLength(1);
    expect(s1[0].output).toEqual({ slept_ms: 1200 });
    await record(taskId, 'device-reconnect');
  });
});

describe('restarts and operators', () => {
  it('stopping and restarting the task worker mid-run loses nothing', async () => {
    const { id, dev } = await newDevice();
    const taskId = await submit(id, linear([
      { type: 'demo.sleep', params: { ms: 1500 } }, { type: 'demo.echo', params: { n: 2 } }, { type: 'demo.echo', params: { n: 3 } },
    ]));
    await eventually(async () => dev!.dispatches(taskId).length === 1, 15_000, 'dispatch');
    await sys.stopWorker();
    await new Promise((r) => setTimeout(r, 2000)); // the step finishes while no worker runs
    await sys.startWorker();
    await waitEnd(taskId, 45_000);
    expect(kinds(taskId).at(-1)).toBe('run.completed');
    expect(dev!.dispatches(taskId).map((d) => d.step_id)).toEqual(['s1', 's2', 's3']);
    const seqs = monitor.eventsOf(taskId).filter((e) => e.seq !== undefined).map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  });

  it('a run terminated in Temporal is mirrored as cancelled within 5 s and frees its device', async () => {
    const { id, dev } = await newDevice();
    const taskId = await submit(id, linear([{ type: 'demo.sleep', params: { ms: 30_000 } }]));
    await eventually(async () => dev!.dispatches(taskId).length === 1, 15_000, 'dispatch');
    const t0 = Date.now();
    await sys.temporal.workflow.getHandle(`task-${taskId}`).terminate('operator stopped it');
    const task = await mirrored(taskId, 'cancelled');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(task.status_reason).toBe('operator stopped it');
    await waitEnd(taskId);
    // The device's lane was released: the next run gets it.
    const next = await submit(id, linear([{ type: 'demo.echo', params: {} }]));
    await waitEnd(next, 20_000);
    expect(kinds(next).at(-1)).toBe('run.completed');
  });
});

describe('definitions', () => {
  it('answers 400 with the node id for bad definitions', async () => {
    const post = (definition: unknown) => sys.api.post('/workflows', { name: 'bad', definition }, user.token);
    const cycle = await post({
      nodes: [{ id: 'start', type: 'start' }, { id: 'a', type: 'x.y' }, { id: 'b', type: 'x.y' }, { id: 'end', type: 'end' }],
      edges: [{ from: 'start', to: 'a' }, { from: 'a', to: 'b' }, { from: 'b', to: 'a' }],
    });
    expect(cycle.status).toBe(400);
    expect(cycle.body.data.errors.map((e: { message: string }) => e.message)).toContain('cycle through node "a" that does not pass a loop node');

    const unreachable = await post({
      nodes: [{ id: 'start', type: 'start' }, { id: 'lost', type: 'x.y' }, { id: 'end', type: 'end' }],
      edges: [{ from: 'start', to: 'end' }, { from: 'lost', to: 'end' }],
    });
    expect(unreachable.status).toBe(400);
    expect(unreachable.body.data.errors).toEqual([{ path: 'definition.nodes.1', message: 'node "lost" is not reachable from the start node' }]);

    const later = await post(linear([{ type: 'x.y', params: { v: '{{s2.out}}' } }, { type: 'x.y' }]));
    expect(later.status).toBe(400);
    expect(later.body.data.errors[0]).toEqual({ path: 'definition.nodes.1.params', message: 'template "{{s2.out}}": node "s2" does not run before "s1"' });

    const badCondition = await post({
      nodes: [{ id: 'start', type: 'start' }, { id: 'c', type: 'condition', params: { if: { var: 'x', bogus: 1 } } }, { id: 'end', type: 'end' }],
      edges: [{ from: 'start', to: 'c' }, { from: 'c', to: 'end', when: 'true' }, { from: 'c', to: 'end', when: 'false' }],
    });
    expect(badCondition.status).toBe(400);
    expect(badCondition.body.data.errors[0].path).toMatch(/^definition\.nodes\.1\.params/);
    expect(badCondition.body.data.errors[0].message).toContain('"c"');
  });
});

describe('schedules', () => {
  it('creates a Temporal Schedule that submits ordinary tasks when it fires; pause, resume, delete', async () => {
    const { id, dev } = await newDevice();
    const workflowId = await addWorkflow(sys.api, user.token, linear([{ type: 'demo.echo', params: { from: 'schedule' } }]));
    const created = await sys.api.post('/schedules', { workflow_id: workflowId, device_id: id, cron: '0 9 * * 1-5', timezone: 'Asia/Shanghai', name: 'weekday mornings' }, user.token);
    expect(created.status).toBe(201);
    const schedule = created.body.data.schedule;
    expect(schedule.next_runs.length).toBeGreaterThan(0);
    expect(new Date(schedule.next_runs[0]).getUTCHours()).toBe(1); // 09:00 in Shanghai

    // Fire it now, as an operator would from the Temporal UI.
    await sys.temporal.schedule.getHandle(schedule.temporal_schedule_id).trigger();
    const task = await eventually(async () => {
      const list = (await sys.api.get(`/tasks?workflow_id=${workflowId}`, user.token)).body.data.list;
      return list.length === 1 && list[0];
    }, 20_000, 'scheduled task');
    expect(task.idempotency_key).toMatch(/^schedule:schedule-/);
    monitor.subscribe(task.id);
    await waitEnd(task.id);
    // The firing's own workflow (its id is the task's idempotency key) has ended by now.
    const firingId = task.idempotency_key.replace(/^schedule:/, '');
    expect(await sys.temporal.workflow.getHandle(firingId).result()).toEqual({ taskId: task.id });
    await recordHistory(firingId, 'scheduled-run');
    expect(dev!.dispatches(task.id)[0].params).toEqual({ from: 'schedule' });

    expect((await sys.api.post(`/schedules/${schedule.id}/pause`, {}, user.token)).body.data.schedule.paused).toBe(true);
    expect((await sys.temporal.schedule.getHandle(schedule.temporal_schedule_id).describe()).state.paused).toBe(true);
    expect((await sys.api.post(`/schedules/${schedule.id}/resume`, {}, user.token)).body.data.schedule.paused).toBe(false);
    const list = await sys.api.get('/schedules', user.token);
    expect(list.body.data.list.map((s: { id: string }) => s.id)).toContain(schedule.id);

    const other = await signup(sys.api);
    expect((await sys.api.get(`/schedules/${schedule.id}`, other.token)).status).toBe(404);

    expect((await sys.api.del(`/schedules/${schedule.id}`, user.token)).status).toBe(200);
    await expect(sys.temporal.schedule.getHandle(schedule.temporal_schedule_id).describe()).rejects.toThrow();
    expect((await sys.api.get(`/schedules/${schedule.id}`, user.token)).status).toBe(404);
  });

  it('rejects a schedule without exactly one of cron and interval, or with a bad cron', async () => {
    const { id } = await newDevice(false);
    const workflowId = await addWorkflow(sys.api, user.token, linear([{ type: 'demo.echo' }]));
    const both = await sys.api.post('/schedules', { workflow_id: workflowId, device_id: id, cron: '0 9 * * *', interval_seconds: 3600 }, user.token);
    expect(both.status).toBe(400);
    expect(both.body.data.errors[0].path).toBe('cron');
    const bad = await sys.api.post('/schedules', { workflow_id: workflowId, device_id: id, cron: '99 99 * * * *' }, user.token);
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe(1001);
  });
});
