// F8: time to first step, from POST /tasks to the first step's dispatch frame at the device,
// against bare Temporal: client start() to the first activity's frame on a ws socket.
import { performance } from 'node:perf_hooks';
import { workflowIdForTask, type TaskRunResult } from '../../../workflows/api.ts';
import type { bareFirstStepWorkflow } from '../bare-workflows.ts';
import type { Bench } from '../harness.ts';
import { LiteSocket, connectDevices, disconnectDevices } from '../clients.ts';
import { median, percentile } from '../lib.ts';
import { firstStepPath, type FirstStepPath } from '../history.ts';

export interface F8Result {
  runs: number;
  /** ms from POST /tasks to the device's `step/dispatch` of the first step. */
  ours: number[];
  /** ms from the client's start() to the first activity's frame at the driver. */
  bare: number[];
  /** The median run of each side, read back from its history: where its time to first step went. */
  oursPath: F8Path | null;
  barePath: F8Path | null;
}

/** One run's time to first step in parts, ms (the history's times are the same machine's clock). */
export interface F8Path extends FirstStepPath {
  totalMs: number;
  /** The request or start() call -> WorkflowExecutionStarted (ours: the REST submission). */
  submitMs: number;
  /** The first activity started -> its frame at the client. */
  deliverMs: number;
}

/** F8's target: ours' p50 at most this multiple of bare's. */
export const F8_TARGET = 1.2;

/**
 * One run at a time of a 3-step workflow (the F1 shape), ours and bare taking turns so that the
 * machine's drift hits both; each run ends before the next starts, so the figure is the path's
 * latency, not a queue's.
 */
export async function f8FirstStep(ctx: Bench, slot: () => number): Promise<F8Result> {
  const dev = ctx.devices[0];
  await connectDevices([dev], ctx.wsUrl);
  const sock = new LiteSocket(`${ctx.bareUrl.replace(/^http/, 'ws')}/notify`);
  await sock.ready();
  const out: F8Result = { runs: 0, ours: [], bare: [], oursPath: null, barePath: null };
  // Per run: its workflow id, and the epoch times of its request and of its first step's frame.
  const oursRuns: Run[] = [];
  const bareRuns: Run[] = [];
  const epoch = (t: number) => performance.timeOrigin + t;
  try {
    for (let i = 0; i < ctx.sizes.f8Runs; i++) {
      if (i >= 3 && slot() < 2) {
        ctx.skipped.push(`F8 runs ${i + 1} to ${ctx.sizes.f8Runs}`);
        break;
      }
      // Ours: the first dispatch this device gets after the POST.
      const dispatched = dev.next((e) => e.type === 'dispatch', 30_000, 'the first step');
      const start = performance.now();
      const task = (await ctx.rest.ok('POST', '/tasks', { workflow_id: ctx.wf.three, device_id: dev.id })).task;
      const at = await dispatched.promise;
      out.ours.push(at - start);
      oursRuns.push({ workflowId: workflowIdForTask(task.id), from: epoch(start), to: epoch(at) });
      const result = await ctx.temporal.workflow.getHandle(workflowIdForTask(task.id)).result() as TaskRunResult;
      if (result.status !== 'completed') throw new Error(`F8 run ${task.id} ended ${result.status}`);

      // Bare: the first activity writes `i` to our socket.
      const notified = new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('F8 bare: the first activity did not say so')), 30_000);
        sock.onFrame = (text, t) => {
          if (text !== String(i)) return;
          clearTimeout(timer);
          resolve(t);
        };
      });
      const bareStart = performance.now();
      const handle = await ctx.temporal.workflow.start<typeof bareFirstStepWorkflow>('bareFirstStepWorkflow', {
        taskQueue: ctx.bareQueue, workflowId: `bare-first-${process.pid}-${i}`, args: [i],
      });
      const bareAt = await notified;
      out.bare.push(bareAt - bareStart);
      bareRuns.push({ workflowId: handle.workflowId, from: epoch(bareStart), to: epoch(bareAt) });
      await handle.result();
      out.runs++;
    }
  } finally {
    await sock.close();
    await disconnectDevices([dev]);
  }
  type Run = { workflowId: string; from: number; to: number };
  /** A run's time to first step in parts, from its history; and the history's first event types. */
  const pathOfRun = async (run: Run): Promise<{ path: F8Path | null; kinds: string }> => {
    const events = (await ctx.temporal.workflow.getHandle(run.workflowId).fetchHistory()).events ?? [];
    const p = firstStepPath(events);
    return {
      path: p && { ...p, totalMs: run.to - run.from, submitMs: p.startedAt - run.from, deliverMs: run.to - p.activityStartedAt },
      kinds: events.slice(0, 16).map((e) => String(e.eventType).replace(/^EVENT_TYPE_/, '')).join(' '),
    };
  };
  const byTime = (runs: Run[]) => [...runs].sort((a, b) => (a.to - a.from) - (b.to - b.from));
  const medianPath = async (runs: Run[]) => {
    const mid = byTime(runs)[Math.floor((runs.length - 1) / 2)];
    return mid ? (await pathOfRun(mid)).path : null;
  };
  out.oursPath = await medianPath(oursRuns);
  out.barePath = await medianPath(bareRuns);
  // The slowest of ours, in the same parts: where a p99 far from the p50 went.
  const slowest = byTime(oursRuns).at(-1);
  if (slowest) {
    const { path: p, kinds } = await pathOfRun(slowest);
    ctx.log(`F8 slowest ours run (#${oursRuns.indexOf(slowest) + 1}, ${(slowest.to - slowest.from).toFixed(0)} ms): ${p
      ? `submit ${p.submitMs.toFixed(0)} ms, to first activity scheduled ${p.toScheduledMs.toFixed(0)} ms in ${p.workflowTasks} workflow task(s), activity queue ${p.activityQueueMs.toFixed(0)} ms, to the device ${p.deliverMs.toFixed(0)} ms`
      : 'no first activity in its history'}; history: ${kinds}`);
  }
  ctx.log(`F8: POST -> first step p50 ${median(out.ours).toFixed(1)} ms (p99 ${percentile(out.ours, 99).toFixed(1)}), bare start -> first activity p50 ${median(out.bare).toFixed(1)} ms (p99 ${percentile(out.bare, 99).toFixed(1)}): ${(median(out.ours) / median(out.bare)).toFixed(2)}x over ${out.runs} runs`);
  return out;
}
