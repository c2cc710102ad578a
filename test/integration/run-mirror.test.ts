// The PostgreSQL mirror of a run is written by several writers side by side (the run's own
// recordRunEvents batches and the dispatch activity writing the events it carries), so batches
// land in any order and sometimes twice. Whatever the order, the mirror must end the same as
// when the batches are applied one by one in seq order.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Task, TaskStep } from '../../src/db/entities.ts';
import { applyRunEvents } from '../../src/domain/run-mirror.ts';
import type { RunEvent } from '../../workflows/api.ts';
import { addDevice, addWorkflow, linear, signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let userId: string;
let deviceId: string;
let workflowId: string;

beforeAll(async () => {
  sys = await startSystem();
  const user = await signup(sys.api);
  userId = user.userId;
  deviceId = (await addDevice(sys.api, user.token)).id;
  workflowId = await addWorkflow(sys.api, user.token, linear([{ type: 'demo.echo' }, { type: 'demo.echo' }]));
});

afterAll(async () => {
  await sys?.stop();
});

/** A task row with no run behind it: only the writes under test touch it. */
async function bareTask(): Promise<string> {
  const em = sys.orm.em.fork();
  const wf = await em.getConnection().execute<{ id: string }[]>(
    'select id from workflow_versions where workflow_id = ? order by version desc limit 1', [workflowId]);
  const id = crypto.randomUUID();
  em.create(Task, {
    id, userId, workflowId, workflowVersionId: wf[0].id, deviceId, status: 'pending', statusReason: 'queued',
    priority: 'medium', parameters: {}, idempotencyKey: null, temporalWorkflowId: `task-${id}`, progress: 0, lastSeq: 0, result: null,
  });
  await em.flush();
  return id;
}

function runEvents(taskId: string): RunEvent[] {
  const at = Date.parse('2026-11-23T10:00:00Z');
  const ev = (seq: number, kind: RunEvent['kind'], data: Record<string, unknown> = {}): RunEvent => ({ seq, kind, at: at + seq * 1000, data });
  const step = (n: number, attempt = 1) => ({ step_id: `s${n}`, key: `${taskId}:s${n}:${attempt}`, attempt, type: 'demo.echo' });
  return [
    ev(1, 'run.pending', { reason: 'queued' }),
    ev(2, 'run.started'),
    ev(3, 'step.dispatched', { ...step(1), name: null, delivery: 1 }),
    ev(4, 'step.completed', { ...step(1), output: { n: 1 }, progress: 50 }),
    ev(5, 'step.dispatched', { ...step(2), name: null, delivery: 1 }),
    ev(6, 'run.paused', { by: 'user' }),
    ev(7, 'run.resumed', { by: 'user' }),
    ev(8, 'step.completed', { ...step(2), output: { n: 2 }, progress: 100 }),
    ev(9, 'run.completed', { outputs: { s1: { n: 1 }, s2: { n: 2 } } }),
  ];
}

async function mirrorOf(taskId: string) {
  const em = sys.orm.em.fork();
  const t = await em.findOneOrFail(Task, { id: taskId });
  const steps = await em.find(TaskStep, { taskId }, { orderBy: { key: 'asc' } });
  const events = await em.getConnection().execute<{ seq: number; kind: string }[]>(
    'select seq, kind from task_events where task_id = ? order by seq', [taskId]);
  return {
    task: { status: t.status, reason: t.statusReason, progress: t.progress, lastSeq: t.lastSeq, result: t.result, finished: t.finishedAt?.toISOString() ?? null },
    steps: steps.map((s) => ({ key: s.key.split(':').slice(1).join(':'), status: s.status, output: s.output, type: s.nodeType, finished: s.finishedAt?.toISOString() ?? null })),
    events: events.map((e) => `${e.seq} ${e.kind}`),
  };
}

const split = (events: RunEvent[], cuts: number[]): RunEvent[][] => {
  const out: RunEvent[][] = [];
  let from = 0;
  for (const c of [...cuts, events.length]) {
    out.push(events.slice(from, c));
    from = c;
  }
  return out;
};

describe('the run mirror folds batches in seq order whatever order they land in', () => {
  let expected: Awaited<ReturnType<typeof mirrorOf>>;

  beforeAll(async () => {
    const id = await bareTask();
    for (const batch of split(runEvents(id), [3, 4, 5, 8])) await applyRunEvents(sys.orm, id, batch);
    expected = await mirrorOf(id);
  });

  it('applies batches one by one in order to a completed run', () => {
    expect(expected.task).toMatchObject({ status: 'completed', progress: 100, lastSeq: 9 });
    expect(expected.steps.map((s) => s.status)).toEqual(['completed', 'completed']);
    expect(expected.events).toHaveLength(9);
  });

  const orders: [string, number[]][] = [
    ['reversed', [4, 3, 2, 1, 0]],
    ['a gap filled last', [0, 2, 3, 4, 1]],
    ['the first batch last', [1, 2, 3, 4, 0]],
    ['interleaved', [2, 0, 4, 1, 3]],
  ];
  it.each(orders)('lands %s: the same mirror', async (_name, order) => {
    const id = await bareTask();
    const batches = split(runEvents(id), [3, 4, 5, 8]);
    for (const i of order) await applyRunEvents(sys.orm, id, batches[i]);
    expect(await mirrorOf(id)).toEqual(expected);
  });

  it('lands all at once and twice over (retried writes): the same mirror', async () => {
    const id = await bareTask();
    const batches = split(runEvents(id), [3, 4, 5, 8]);
    await Promise.all([...batches, ...batches.slice(1, 3)].map((b) => applyRunEvents(sys.orm, id, b)));
    expect(await mirrorOf(id)).toEqual(expected);
  });

  it('holds a batch past a gap without folding it', async () => {
    const id = await bareTask();
    const batches = split(runEvents(id), [3, 4, 5, 8]);
    await applyRunEvents(sys.orm, id, batches[0]);
    await applyRunEvents(sys.orm, id, batches[2]);
    const held = await mirrorOf(id);
    expect(held.task).toMatchObject({ status: 'running', lastSeq: 3 });
    expect(held.steps.map((s) => s.status)).toEqual(['running']);
    expect(held.events).toHaveLength(4); // logged, not folded
  });
});

describe('writes of many runs at once share transactions (group commit)', () => {
  it('folds every run as if written alone, in fewer transactions than writes; a bad write fails alone', async () => {
    const expected = await (async () => {
      const id = await bareTask();
      for (const batch of split(runEvents(id), [3, 4, 5, 8])) await applyRunEvents(sys.orm, id, batch);
      return mirrorOf(id);
    })();
    const ids = await Promise.all(Array.from({ length: 12 }, () => bareTask()));
    const gone = crypto.randomUUID();
    // Each run's batches in reverse, the runs interleaved: every write is issued before any ends.
    const writes: { id: string; batch: RunEvent[] }[] = [];
    const batches = ids.map((id) => split(runEvents(id), [3, 4, 5, 8]).reverse());
    for (let i = 0; i < 5; i++) for (const [n, id] of ids.entries()) writes.push({ id, batch: batches[n][i] });
    writes.splice(7, 0, { id: 'not-a-uuid', batch: runEvents(gone).slice(0, 1) }, { id: gone, batch: runEvents(gone).slice(0, 2) });
    const settled = await Promise.allSettled(writes.map((w) => applyRunEvents(sys.orm, w.id, w.batch)));
    expect(settled.map((r, i) => `${writes[i].id === 'not-a-uuid' ? 'bad' : 'good'} ${r.status}`))
      .toEqual(writes.map((w) => (w.id === 'not-a-uuid' ? 'bad rejected' : 'good fulfilled')));
    for (const id of ids) expect(await mirrorOf(id)).toEqual(expected);
    // PostgreSQL's own record of which transaction inserted each event row (xmin).
    const [{ n }] = await sys.orm.em.fork().getConnection().execute<{ n: number }[]>(
      `select count(distinct xmin::text)::int as n from task_events where task_id in (${ids.map(() => '?').join(', ')})`, ids);
    expect(n).toBeLessThan(writes.length / 3);
  });
});

describe('the mirror inlines values as SQL literals', () => {
  it('stores hostile text byte for byte', async () => {
    const id = await bareTask();
    const nasty = `it's \\' a "test" $$ --; drop table tasks; \\x00 \u2028 ☃`;
    const [first] = runEvents(id);
    await applyRunEvents(sys.orm, id, [
      { ...first, data: { reason: nasty } },
      { seq: 2, kind: 'step.dispatched', at: first.at + 1, data: { step_id: nasty, key: `${id}:${nasty}:1`, attempt: 1, type: nasty, name: nasty } },
      { seq: 3, kind: 'step.failed', at: first.at + 2, data: { step_id: nasty, key: `${id}:${nasty}:1`, attempt: 1, error: { code: nasty, message: nasty } } },
    ]);
    const em = sys.orm.em.fork();
    const [ev] = await em.getConnection().execute<{ data: { reason: string } }[]>('select data from task_events where task_id = ? and seq = 1', [id]);
    expect(ev.data.reason).toBe(nasty);
    const step = await em.findOneOrFail(TaskStep, { taskId: id });
    expect({ name: step.name, type: step.nodeType, error: step.error }).toEqual({ name: nasty, type: nasty, error: { code: nasty, message: nasty } });
  });

  it('writes nothing for a deleted task, and a failed write leaves no transaction open', async () => {
    const gone = crypto.randomUUID();
    await applyRunEvents(sys.orm, gone, runEvents(gone).slice(0, 2));
    const em = sys.orm.em.fork();
    expect(await em.getConnection().execute('select 1 from task_events where task_id = ?', [gone])).toHaveLength(0);
    // Not a uuid: the first trip fails; the pool's connections must stay usable afterwards.
    await expect(applyRunEvents(sys.orm, 'not-a-uuid', runEvents(gone).slice(0, 1))).rejects.toThrow();
    const id = await bareTask();
    await Promise.all(Array.from({ length: 12 }, () => applyRunEvents(sys.orm, id, runEvents(id).slice(0, 3))));
    expect((await mirrorOf(id)).task.lastSeq).toBe(3);
  });
});
