// The production topology as real processes (scripts/cluster/topology.ts): the Temporal server
// on a private pair of PostgreSQL databases, its UI, two API nodes and two task workers as child
// processes, HAProxy in front. Every process is stopped and every database dropped at the end.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { abortableSleep, DeviceClient, type StepHandler } from '../../src/clients/device-client.ts';
import { MonitorClient } from '../../src/clients/monitor-client.ts';
import { dropClusterDatabases, privateClusterOptions, startCluster, type Cluster, type ClusterOptions } from '../../scripts/cluster/topology.ts';
import { addDevice, addWorkflow, Api, eventually, linear, signup } from '../helpers/api.ts';
import { connectTestDevice, testHandlers, type TestDevice } from '../helpers/devices.ts';
import { TEST_PG_URL } from '../helpers/env.ts';

let options: ClusterOptions;
let cluster: Cluster;
let api: Api;
let user: { token: string; userId: string };
const devices: { id: string; pc: TestDevice }[] = [];
const monitors: MonitorClient[] = [];

const wsOfNode = (i: number) => `${cluster.nodes[i].replace(/^http/, 'ws')}/ws`;

beforeAll(async () => {
  options = privateClusterOptions(TEST_PG_URL, resolve(import.meta.dirname, '..', '..', '.data'));
  cluster = await startCluster(options);
  api = new Api(cluster.url);
  user = await signup(api);
  // One device on each API node, connected to the node itself (HAProxy would pick for us).
  for (const i of [0, 1]) {
    const d = await addDevice(api, user.token);
    devices.push({ id: d.id, pc: await connectTestDevice(wsOfNode(i), d.deviceToken) });
  }
}, 150_000);

afterAll(async () => {
  for (const m of monitors) await m.stop().catch(() => undefined);
  for (const d of devices) await d.pc.client.stop().catch(() => undefined);
  await cluster?.stop();
  // Also when the cluster did not come up (it stops what it started itself).
  if (options) await dropClusterDatabases(options);
}, 60_000);

async function submit(deviceIndex: number, steps: Parameters<typeof linear>[0]): Promise<string> {
  const workflowId = await addWorkflow(api, user.token, linear(steps));
  const res = await api.post('/tasks', { workflow_id: workflowId, device_id: devices[deviceIndex].id }, user.token);
  expect(res.status).toBe(201);
  return res.body.data.task.id as string;
}

async function finalStatus(taskId: string, timeoutMs = 60_000): Promise<string> {
  return eventually(async () => {
    const r = await api.get(`/tasks/${taskId}`, user.token);
    const status = r.body?.data?.task?.status as string | undefined;
    return status && ['completed', 'failed', 'cancelled'].includes(status) ? status : undefined;
  }, timeoutMs, `task ${taskId} to finish`);
}

/** The run's durable events from PostgreSQL's mirror: the reference, independent of any stream. */
async function mirrored(taskId: string): Promise<number[]> {
  const r = await api.get(`/tasks/${taskId}/events?limit=200`, user.token);
  return (r.body.data.list as { seq: number }[]).map((e) => e.seq);
}

describe('cluster', () => {
  it('runs submitted through HAProxy complete on devices connected to either node', async () => {
    const ids = await Promise.all([0, 1, 0, 1].map((d) => submit(d, [{ type: 'demo.echo', params: {} }])));
    expect(await Promise.all(ids.map((id) => finalStatus(id)))).toEqual(['completed', 'completed', 'completed', 'completed']);
    expect(devices[0].pc.dispatches(ids[0])).toHaveLength(1);
    expect(devices[1].pc.dispatches(ids[1])).toHaveLength(1);
  });

  it('a monitor moved to the other node resumes with after_seq: no gap, no duplicate', async () => {
    const taskId = await submit(0, [0, 1, 2].map(() => ({ type: 'demo.sleep', params: { ms: 400 } })));
    const first = new MonitorClient({ url: wsOfNode(0), token: user.token });
    await first.start();
    monitors.push(first);
    first.subscribe(taskId);
    await first.waitFor(() => first.eventsOf(taskId).filter((e) => e.seq !== undefined).length >= 3, 30_000, 'first events');
    await first.stop();
    const cursor = first.cursors.get(taskId)!;
    const onWire = (m: MonitorClient) => m.framesOf('task/event')
      .filter((f) => f.payload.task_id === taskId && f.payload.seq !== undefined)
      .map((f) => f.payload.seq as number);
    const before = onWire(first);

    const second = new MonitorClient({ url: wsOfNode(1), token: user.token });
    await second.start();
    monitors.push(second);
    second.subscribe(taskId, cursor);
    expect(await finalStatus(taskId)).toBe('completed');
    const all = await mirrored(taskId);
    await second.waitFor(() => onWire(second).at(-1) === all.at(-1), 15_000, 'resumed to the end');
    expect([...before, ...onWire(second)]).toEqual(all);
  });

  it('a device cut from node A mid-step reconnects through node B: each step takes effect once', async () => {
    const d = await addDevice(api, user.token);
    // The device's own record of what it did, kept apart from anything the system reports.
    const journal: string[] = [];
    const journaled: StepHandler = async (params, ctx) => {
      await abortableSleep(Number((params as { ms: number }).ms), ctx.signal);
      journal.push(`${ctx.taskId}/${ctx.stepId}`);
      return { written: true };
    };
    let node = 0;
    const dialled: number[] = [];
    const client = new DeviceClient({
      url: () => {
        dialled.push(node);
        return wsOfNode(node);
      },
      token: d.deviceToken, handlers: { ...testHandlers(), 'test.journaled': journaled }, maxBackoffMs: 500,
    });
    await client.start();
    try {
      const workflowId = await addWorkflow(api, user.token, linear([
        { type: 'test.journaled', params: { ms: 2000 }, name: 'long' },
        { type: 'test.journaled', params: { ms: 100 }, name: 'short' },
      ]));
      const res = await api.post('/tasks', { workflow_id: workflowId, device_id: d.id }, user.token);
      expect(res.status).toBe(201);
      const taskId = res.body.data.task.id as string;
      await eventually(async () => client.runningKeys.length === 1, 30_000, 'the first step to run');
      node = 1;
      client.drop();
      expect(await finalStatus(taskId)).toBe('completed');
      expect(dialled[0]).toBe(0);
      expect(dialled.slice(1).every((n) => n === 1) && dialled.length > 1).toBe(true);
      const steps = journal.filter((j) => j.startsWith(`${taskId}/`));
      expect(steps).toHaveLength(2);
      expect(new Set(steps).size).toBe(2);
    } finally {
      await client.stop();
    }
  });

  it('a file uploaded through node A downloads byte-identical through node B', async () => {
    // Over two store chunks, UTF-8 text (an allowed type); the nodes have no disk in common.
    const data = Buffer.from(Array.from({ length: 9000 }, () => `${randomBytes(32).toString('hex')}\n`).join(''));
    const form = new FormData();
    form.append('file', new Blob([data]), 'lines.txt');
    const up = await fetch(`${cluster.nodes[0]}/api/v1/files/upload`, {
      method: 'POST', body: form, headers: { Authorization: `Bearer ${user.token}` },
    });
    expect(up.status).toBe(201);
    const { file } = ((await up.json()) as { data: { file: { id: string; size_bytes: number } } }).data;
    expect(file.size_bytes).toBe(data.length);
    const down = await fetch(`${cluster.nodes[1]}/api/v1/files/${file.id}/content`, { headers: { Authorization: `Bearer ${user.token}` } });
    expect(down.status).toBe(200);
    expect(Buffer.from(await down.arrayBuffer()).equals(data)).toBe(true);
  });

  it('kill -9 of a task worker: runs in flight finish on the other one', async () => {
    const ids = await Promise.all([0, 1].map((d) => submit(d, [0, 1, 2].map(() => ({ type: 'demo.sleep', params: { ms: 500 } })))));
    await new Promise((r) => setTimeout(r, 700));
    await cluster.kill('worker-1');
    expect(await Promise.all(ids.map((id) => finalStatus(id, 90_000)))).toEqual(['completed', 'completed']);
    await cluster.restart('worker-1');
  }, 120_000);

  it('kill -9 of an API node: HAProxy sends new requests to the other one; its device comes back on restart', async () => {
    await cluster.kill('api-2');
    // Through HAProxy: the dead node is retried on the live one, then marked down.
    const taskId = await submit(0, [{ type: 'demo.echo', params: {} }]);
    expect(await finalStatus(taskId)).toBe('completed');
    await cluster.restart('api-2');
    // The device of node 2 reconnects by itself and takes work again.
    const again = await submit(1, [{ type: 'demo.echo', params: {} }]);
    expect(await finalStatus(again, 90_000)).toBe('completed');
  }, 150_000);

  it('kill -9 of the Temporal server: restarted, runs resume from PostgreSQL, none lost', async () => {
    const ids = await Promise.all([0, 1, 0, 1].map((d) => submit(d, [0, 1, 2].map(() => ({ type: 'demo.sleep', params: { ms: 600 } })))));
    await new Promise((r) => setTimeout(r, 800));
    await cluster.kill('temporal');
    await new Promise((r) => setTimeout(r, 1000));
    await cluster.restart('temporal');
    expect(await Promise.all(ids.map((id) => finalStatus(id, 120_000)))).toEqual(['completed', 'completed', 'completed', 'completed']);
    for (const id of ids) {
      const seqs = await mirrored(id);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    }
  }, 180_000);
});
