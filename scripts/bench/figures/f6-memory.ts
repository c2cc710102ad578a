// F6: memory per idle device socket and per parked run, ours against bare.
import { workflowIdForTask } from '../../../workflows/api.ts';
import type { bareHeldWorkflow } from '../bare-workflows.ts';
import type { Bench } from '../harness.ts';
import { LiteSocket, connectDevices, disconnectDevices, openSockets } from '../clients.ts';
import { pool, ratio, sleep, until, type MemorySample } from '../lib.ts';

export interface MemDelta {
  n: number;
  /** Main-thread heap + external, bytes per item. */
  heapPer: number;
  /** Heap of the workflow threads, bytes per item. */
  threadPer: number;
  rssPer: number;
}

export interface F6Result {
  sockets: { ours: MemDelta; bare: MemDelta; ratio: number };
  /** ratio: of main heap + workflow threads' heap. */
  runs: { ours: MemDelta; bare: MemDelta; ratio: number; ratioRss: number };
}

const heapOf = (m: MemorySample) => m.heapUsed + m.external;
const delta = (n: number, a: MemorySample, b: MemorySample): MemDelta =>
  ({ n, heapPer: (heapOf(b) - heapOf(a)) / n, threadPer: (b.threadHeap - a.threadHeap) / n, rssPer: (b.rss - a.rss) / n });

/** A memory sample once the heaps stopped shrinking (what the last phase let go is gone). */
async function settledMemory(ctx: Bench): Promise<MemorySample> {
  let last = await ctx.srv.call('memory');
  for (let i = 0; i < 2; i++) {
    await sleep(300);
    const m = await ctx.srv.call('memory');
    const moved = Math.abs(heapOf(m) + m.threadHeap - heapOf(last) - last.threadHeap);
    last = m;
    if (moved < 256 * 1024) break;
  }
  return last;
}

export async function f6Memory(ctx: Bench): Promise<F6Result> {
  const n = ctx.sizes.f6Sockets;
  const devs = ctx.devices.slice(0, n);
  const wsBare = ctx.bareUrl.replace(/^http/, 'ws');
  // Warm the paths once (first-use allocations are not per socket).
  await connectDevices(devs.slice(0, 5), ctx.wsUrl);
  await disconnectDevices(devs.slice(0, 5));
  await Promise.all((await openSockets(5, () => new LiteSocket(`${wsBare}/idle`))).map((s) => s.close()));
  await until(async () => (await ctx.srv.call('counts')).devices === 0, 10_000, 'devices gone');

  // Bare sockets.
  let before = await settledMemory(ctx);
  const bareSocks = await openSockets(n, () => new LiteSocket(`${wsBare}/idle`));
  await until(async () => (await ctx.srv.call('counts')).bareSockets >= n, 20_000, 'bare sockets');
  let after = await ctx.srv.call('memory');
  const bareSockets = delta(n, before, after);
  await Promise.all(bareSocks.map((s) => s.close()));

  // Our device sockets (device tokens, presence written).
  before = await settledMemory(ctx);
  await connectDevices(devs, ctx.wsUrl);
  await until(async () => (await ctx.srv.call('counts')).devices === n, 30_000, 'devices connected');
  await sleep(500); // presence writes and online signals settle
  after = await ctx.srv.call('memory');
  const oursSockets = delta(n, before, after);
  ctx.log(`F6 sockets: ours ${(oursSockets.heapPer / 1024).toFixed(1)} KB, bare ${(bareSockets.heapPer / 1024).toFixed(1)} KB per socket`);

  // Runs parked in a long step: the bare ones first (an activity that holds, heartbeating, and
  // says so over the notify socket),
  // then ours (in a held step, one per device), with the devices connected and idle throughout.
  const k = ctx.sizes.f6Runs;
  const sock = new LiteSocket(`${wsBare}/notify`);
  await sock.ready();
  before = await settledMemory(ctx);
  let parked = 0;
  sock.onFrame = () => { parked++; };
  const handles = await pool(Array.from({ length: k }, (_, i) => i), 20, (i) =>
    ctx.temporal.workflow.start<typeof bareHeldWorkflow>('bareHeldWorkflow', {
      taskQueue: ctx.bareQueue, workflowId: `bare-held-${process.pid}-${i}`, args: [i],
    }));
  await until(() => parked >= k, 60_000, 'bare runs parked');
  await sleep(1000);
  after = await ctx.srv.call('memory');
  const bareRuns = delta(k, before, after);
  await pool(handles, 20, (h) => h.signal('release'));
  await Promise.all(handles.map((h) => h.result()));
  await sock.close();

  await ctx.srv.call('heapSnapshots', { label: 'f6-before-ours' }, 120_000);
  before = await settledMemory(ctx);
  const waits = devs.slice(0, k).map((d) => d.next((e) => e.type === 'dispatch', 60_000, 'parked step'));
  const tasks = await pool(devs.slice(0, k), 20, async (d) =>
    (await ctx.rest.ok('POST', '/tasks', { workflow_id: ctx.wf.hold, device_id: d.id })).task.id as string);
  await Promise.all(waits.map((w) => w.promise));
  await sleep(1000); // the step.dispatched events recorded, activities heartbeating
  after = await ctx.srv.call('memory');
  const oursRuns = delta(k, before, after);
  await ctx.srv.call('heapSnapshots', { label: 'f6-parked-ours' }, 120_000);
  await pool(tasks, 20, (id) => ctx.rest.ok('POST', `/tasks/${id}/cancel`, {}));
  await Promise.all(tasks.map((id) => ctx.temporal.workflow.getHandle(workflowIdForTask(id)).result()));
  await disconnectDevices(devs);
  const kb = (d: MemDelta) => `${((d.heapPer + d.threadPer) / 1024).toFixed(1)} KB (rss ${(d.rssPer / 1024).toFixed(1)} KB)`;
  ctx.log(`F6 runs: ours ${kb(oursRuns)}, bare ${kb(bareRuns)} per parked run`);
  return {
    sockets: { ours: oursSockets, bare: bareSockets, ratio: ratio(oursSockets.heapPer, bareSockets.heapPer) },
    runs: {
      ours: oursRuns, bare: bareRuns,
      ratio: ratio(oursRuns.heapPer + oursRuns.threadPer, bareRuns.heapPer + bareRuns.threadPer),
      ratioRss: ratio(oursRuns.rssPer, bareRuns.rssPer),
    },
  };
}
