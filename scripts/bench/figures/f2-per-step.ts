// F2: what one more step of a run costs, ours against the bare product (a step: a round trip to a
// bare device, as each of ours is to the simulated PC).
import { workflowIdForTask } from '../../../workflows/api.ts';
import { type Bench, oursRun, bareRun } from '../harness.ts';
import { closeBareDevices, connectDevices, disconnectDevices, openBareDevices } from '../clients.ts';
import { median, ratio } from '../lib.ts';
import { historyBreakdown, type HistoryBreakdown } from '../history.ts';

/** Medians of one shape of run, ms. */
export interface F2Side {
  oneMs: number;
  longMs: number;
  /** (long - one) / (steps - 1): what one more step costs, without the run's fixed cost. */
  perStepMs: number;
}

export interface F2Result {
  steps: number;
  runs: number;
  ours: F2Side;
  bare: F2Side;
  /** ours.perStepMs - bare.perStepMs: the figure. */
  addedPerStepMs: number;
  /** ours.oneMs - bare.oneMs: what a run costs beyond its steps (lane, mirror, submission). */
  addedPerRunMs: number;
  ratio: number;
  /** The median long run, read from its history. */
  oursHistory: HistoryBreakdown | null;
  bareHistory: HistoryBreakdown | null;
  /** Client-observed duration minus the workflow's own (history) duration: submit and result. */
  oursOutsideMs: number;
  bareOutsideMs: number;
}

/**
 * The slope of run time over steps at concurrency 1: runs of 1 and of `f2Steps` steps, ours and
 * bare interleaved so drift on a shared machine hits both. A run's fixed cost (the lane, the
 * submission, the last mirror write) cancels out of the slope and is reported on its own.
 */
export async function f2PerStep(ctx: Bench, slot: () => number): Promise<F2Result> {
  await connectDevices(ctx.devices.slice(0, 1), ctx.wsUrl);
  const bareDevices = await openBareDevices(ctx.bareUrl, 1);
  const o = { one: [] as number[], long: [] as number[], longIds: [] as string[] };
  const b = { one: [] as number[], long: [] as number[], longIds: [] as string[] };
  for (let i = 0; i < ctx.sizes.f2Runs && (i < 2 || slot() > 0); i++) {
    o.one.push((await oursRun(ctx, 0, ctx.wf.one)).ms);
    b.one.push((await bareRun(ctx, 1, 0)).ms);
    const ol = await oursRun(ctx, 0, ctx.wf.long);
    o.long.push(ol.ms);
    o.longIds.push(ol.taskId);
    const bl = await bareRun(ctx, ctx.sizes.f2Steps, 0);
    b.long.push(bl.ms);
    b.longIds.push(bl.workflowId);
  }
  await closeBareDevices(bareDevices);
  await disconnectDevices(ctx.devices.slice(0, 1));
  const runs = o.one.length;
  if (runs < ctx.sizes.f2Runs) ctx.skipped.push(`F2 rounds ${runs + 1} to ${ctx.sizes.f2Runs}`);
  const side = (one: number[], long: number[]): F2Side => {
    const oneMs = median(one);
    const longMs = median(long);
    return { oneMs, longMs, perStepMs: (longMs - oneMs) / (ctx.sizes.f2Steps - 1) };
  };
  const ours = side(o.one, o.long);
  const bare = side(b.one, b.long);
  const read = async (workflowId: string, stepType: string) => {
    try {
      const h = await ctx.temporal.workflow.getHandle(workflowId).fetchHistory();
      return historyBreakdown(h.events ?? [], stepType);
    } catch {
      return null;
    }
  };
  const medianId = (ms: number[], ids: string[]) => ids[ms.indexOf(median(ms))] ?? ids[0];
  const oursHistory = await read(workflowIdForTask(medianId(o.long, o.longIds)), 'dispatchStep');
  const bareHistory = await read(medianId(b.long, b.longIds), 'deviceStep');
  const res: F2Result = {
    steps: ctx.sizes.f2Steps, runs, ours, bare,
    addedPerStepMs: ours.perStepMs - bare.perStepMs,
    addedPerRunMs: ours.oneMs - bare.oneMs,
    ratio: ratio(ours.perStepMs, bare.perStepMs),
    oursHistory, bareHistory,
    oursOutsideMs: oursHistory ? ours.longMs - oursHistory.durationMs : NaN,
    bareOutsideMs: bareHistory ? bare.longMs - bareHistory.durationMs : NaN,
  };
  ctx.log(`F2: per step ours ${ours.perStepMs.toFixed(1)} ms, bare ${bare.perStepMs.toFixed(1)} ms: +${res.addedPerStepMs.toFixed(1)} ms/step; per run +${res.addedPerRunMs.toFixed(1)} ms`);
  return res;
}
