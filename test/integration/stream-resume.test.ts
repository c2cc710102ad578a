// Resuming a subscription with after_seq on a node that has not streamed the run yet (a phone
// that reconnects through the load balancer to another node, or a node after a restart): the
// frames on the wire, not a client's de-duplication, must start past the cursor. The reference
// list is the run's event mirror in PostgreSQL (GET /tasks/:id/events), not the stream.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { workflowIdForTask } from '../../workflows/api.ts';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { connectTestDevice, type TestDevice } from '../helpers/devices.ts';
import { startSystem, type System } from '../helpers/system.ts';

type Frame = { type: string; re?: string; payload: Record<string, unknown> };

let sys: System;
let user: { token: string; userId: string };
let device: { id: string; deviceToken: string };
let pc: TestDevice;
const sockets: WebSocket[] = [];

const wsOf = (i: number) => `${sys.nodes[i].url.replace(/^http/, 'ws')}/ws`;

beforeAll(async () => {
  sys = await startSystem({ nodes: 2 });
  user = await signup(sys.api);
  device = await addDevice(sys.api, user.token);
  pc = await connectTestDevice(wsOf(0), device.deviceToken);
});

afterAll(async () => {
  for (const ws of sockets) ws.terminate();
  await pc?.client.stop();
  await sys?.stop();
});

/** A run that completes while nobody watches; resolves with its durable events from the mirror. */
async function completedUnwatched(): Promise<{ taskId: string; seqs: number[] }> {
  const workflowId = await addWorkflow(sys.api, user.token,
    linear([{ type: 'demo.echo', params: {} }, { type: 'demo.echo', params: {} }]));
  const res = await sys.api.post('/tasks', { workflow_id: workflowId, device_id: device.id }, user.token);
  expect(res.status).toBe(201);
  const taskId = res.body.data.task.id as string;
  const list = await eventually(async () => {
    const r = await sys.api.get(`/tasks/${taskId}/events?limit=100`, user.token);
    const l = r.body.data.list as { seq: number; kind: string }[];
    return l.some((e) => e.kind === 'run.completed') ? l : undefined;
  }, 30_000, 'run completed in the mirror');
  return { taskId, seqs: list.map((e) => e.seq) };
}

/** A socket on node `i` that records every frame it receives. */
async function socketOn(i: number): Promise<{ ws: WebSocket; frames: Frame[] }> {
  const ws = new WebSocket(wsOf(i), { headers: { Authorization: `Bearer ${user.token}` } });
  sockets.push(ws);
  const frames: Frame[] = [];
  ws.on('message', (raw) => frames.push(JSON.parse(raw.toString()) as Frame));
  await eventually(async () => frames.some((f) => f.type === 'hello'), 10_000, 'hello');
  return { ws, frames };
}

function subscribe(ws: WebSocket, payload: Record<string, unknown>) {
  ws.send(JSON.stringify({ id: crypto.randomUUID(), type: 'subscribe', ts: Date.now(), payload }));
}

const seqsOf = (frames: Frame[], taskId: string) =>
  frames.filter((f) => f.type === 'task/event' && f.payload.task_id === taskId).map((f) => f.payload.seq as number);

describe('resume with after_seq', () => {
  it('a cold stream sends only the events after the cursor, and so does the warm one after it', async () => {
    const { taskId, seqs } = await completedUnwatched();
    expect(sys.nodes[1].streams.stream(taskId)).toBeUndefined(); // node B has never streamed it
    const expected = seqs.filter((s) => s > 3);

    const cold = await socketOn(1);
    subscribe(cold.ws, { task_id: taskId, after_seq: 3 });
    await eventually(async () => seqsOf(cold.frames, taskId).at(-1) === seqs.at(-1), 15_000, 'cold replay');
    const warm = await socketOn(1);
    subscribe(warm.ws, { task_id: taskId, after_seq: 3 });
    await eventually(async () => seqsOf(warm.frames, taskId).at(-1) === seqs.at(-1), 15_000, 'warm replay');
    // Let any stray late frame arrive before judging.
    await new Promise((r) => setTimeout(r, 300));

    expect(seqsOf(cold.frames, taskId)).toEqual(expected);
    expect(seqsOf(warm.frames, taskId)).toEqual(expected);
  });

  it('raw mode resumes past the cursor on a cold stream and on a warm one', async () => {
    const { taskId } = await completedUnwatched();
    expect(sys.nodes[0].streams.stream(taskId)).toBeUndefined();
    // Once the run has closed its history is final: event ids 1..lastId. (The mirror has
    // run.completed a moment before: the run's last write precedes its close.)
    const handle = sys.temporal.workflow.getHandle(workflowIdForTask(taskId));
    await handle.result();
    const history = await handle.fetchHistory();
    const lastId = history.events!.length;
    const after = 5;
    const expected = Array.from({ length: lastId - after }, (_, i) => after + 1 + i);

    const rawIds = (frames: Frame[]) =>
      frames.filter((f) => f.type === 'history/event' && f.payload.task_id === taskId).map((f) => f.payload.event_id as number);
    const cold = await socketOn(0);
    subscribe(cold.ws, { task_id: taskId, after_seq: after, raw: true });
    await eventually(async () => rawIds(cold.frames).at(-1) === lastId, 15_000, 'cold raw replay');
    const warm = await socketOn(0);
    subscribe(warm.ws, { task_id: taskId, after_seq: after, raw: true });
    await eventually(async () => rawIds(warm.frames).at(-1) === lastId, 15_000, 'warm raw replay');
    await new Promise((r) => setTimeout(r, 300));

    expect(rawIds(cold.frames)).toEqual(expected);
    expect(rawIds(warm.frames)).toEqual(expected);
  });
});
