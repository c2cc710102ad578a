// F1: throughput, runs per second at rising concurrency, ours against the bare product (each step
// a round trip to a bare device) and, for the record, against Temporal alone (trivial steps).
import { type Bench, oursRun, bareRun, closedLoop, accounted, type LoopResult } from '../harness.ts';
import { closeBareDevices, connectDevices, disconnectDevices, openBareDevices } from '../clients.ts';
import { ratio } from '../lib.ts';
import { cpuText, type CpuSample } from '../cpu.ts';
import { withStatements } from '../pg-statements.ts';

export interface F1Level {
  concurrency: number;
  ours: LoopResult;
  /** The baseline: bareDeviceStepsWorkflow, each step sent to a bare device and answered. */
  bare: LoopResult;
  /** bareStepsWorkflow, trivial activities and no device: Temporal alone. */
  alone: LoopResult;
  /** ours / bare: the figure. */
  ratio: number;
  /** ours / alone: for information (it charges us for the device round trip). */
  aloneRatio: number;
  /** CPU ms per run by process group, each side (scripts/bench/cpu.ts). */
  cpu: { ours: CpuSample; bare: CpuSample; alone: CpuSample };
}


export async function f1Throughput(ctx: Bench, slot: () => number): Promise<F1Level[]> {
  const max = Math.max(...ctx.sizes.f1Levels);
  await connectDevices(ctx.devices.slice(0, max), ctx.wsUrl);
  const bareDevices = await openBareDevices(ctx.bareUrl, max);
  const out: F1Level[] = [];
  for (const [i, c] of ctx.sizes.f1Levels.entries()) {
    const n = ctx.sizes.f1Runs(c);
    // The first level always runs; a later one only while the slice has room
    // for a round of `c` runs, judged by the last level's run time.
    const prev = out[out.length - 1];
    // From one run at a time, latency grows slower than concurrency; past that the system is
    // saturated and a round of `c` runs takes about c / (the last level's runs per second).
    const roundS = !prev ? 0 : prev.concurrency === 1
      ? ((prev.ours.p50Ms + prev.bare.p50Ms + prev.alone.p50Ms) * Math.sqrt(c)) / 1000
      : c / prev.ours.perS + c / prev.bare.perS + c / prev.alone.perS;
    if (i > 0 && slot() < Math.max(6, roundS + 2)) {
      ctx.skipped.push(`F1 at ${c} concurrent runs`);
      continue;
    }
    const minRuns = i === 0 ? Math.min(n, 4) : 0;
    const perRun = (r: LoopResult) => r.runs;
    const o = await withStatements(ctx.orm, `F1 c=${c} ours`, () => accounted(ctx, () => closedLoop(c, n, ctx.sizes.f1MaxS, async (loop) => {
      const r = await oursRun(ctx, loop);
      return { ms: r.ms, id: r.taskId };
    }, minRuns), perRun), (x) => x.result.runs, ctx.log);
    const b = await accounted(ctx, () => closedLoop(c, n, ctx.sizes.f1MaxS, async (loop) => {
      const r = await bareRun(ctx, 3, loop);
      return { ms: r.ms, id: r.workflowId };
    }, minRuns), perRun);
    const a = await accounted(ctx, () => closedLoop(c, n, ctx.sizes.f1MaxS, async () => {
      const r = await bareRun(ctx, 3);
      return { ms: r.ms, id: r.workflowId };
    }, minRuns), perRun);
    const [ours, bare, alone] = [o.result, b.result, a.result];
    const level: F1Level = {
      concurrency: c, ours, bare, alone, ratio: ratio(ours.perS, bare.perS), aloneRatio: ratio(ours.perS, alone.perS),
      cpu: { ours: o.cpu, bare: b.cpu, alone: a.cpu },
    };
    out.push(level);
    ctx.log(`F1 c=${c}: ours ${ours.perS.toFixed(2)} runs/s (${ours.runs}), bare ${bare.perS.toFixed(2)} runs/s (${bare.runs}): ${level.ratio.toFixed(2)}x; Temporal alone ${alone.perS.toFixed(2)} runs/s (${alone.runs}): ${level.aloneRatio.toFixed(2)}x`);
    ctx.log(`F1 c=${c} CPU ms per run: ours ${cpuText(o.cpu)}; bare ${cpuText(b.cpu)}; Temporal alone ${cpuText(a.cpu)}`);
  }
  await closeBareDevices(bareDevices);
  await disconnectDevices(ctx.devices.slice(0, max));
  return out;
}
