// F1: throughput, runs per second at rising concurrency, ours against bare Temporal.
import { type Bench, oursRun, bareRun, closedLoop, accounted, type LoopResult } from '../harness.ts';
import { connectDevices, disconnectDevices } from '../clients.ts';
import { ratio } from '../lib.ts';
import { cpuText, type CpuSample } from '../cpu.ts';
import { withStatements } from '../pg-statements.ts';

export interface F1Level {
  concurrency: number;
  ours: LoopResult;
  bare: LoopResult;
  ratio: number;
  /** CPU ms per run by process group, each side (scripts/bench/cpu.ts). */
  cpu: { ours: CpuSample; bare: CpuSample };
}


export async function f1Throughput(ctx: Bench, slot: () => number): Promise<F1Level[]> {
  const max = Math.max(...ctx.sizes.f1Levels);
  await connectDevices(ctx.devices.slice(0, max), ctx.wsUrl);
  const out: F1Level[] = [];
  for (const [i, c] of ctx.sizes.f1Levels.entries()) {
    const n = ctx.sizes.f1Runs(c);
    // The first level always runs; a later one only while the slice has room
    // for a round of `c` runs, judged by the last level's run time.
    const prev = out[out.length - 1];
    // From one run at a time, latency grows slower than concurrency; past that the system is
    // saturated and a round of `c` runs takes about c / (the last level's runs per second).
    const roundS = !prev ? 0 : prev.concurrency === 1
      ? ((prev.ours.p50Ms + prev.bare.p50Ms) * Math.sqrt(c)) / 1000
      : c / prev.ours.perS + c / prev.bare.perS;
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
    const b = await accounted(ctx, () => closedLoop(c, n, ctx.sizes.f1MaxS, async () => {
      const r = await bareRun(ctx);
      return { ms: r.ms, id: r.workflowId };
    }, minRuns), perRun);
    const [ours, bare] = [o.result, b.result];
    out.push({ concurrency: c, ours, bare, ratio: ratio(ours.perS, bare.perS), cpu: { ours: o.cpu, bare: b.cpu } });
    ctx.log(`F1 c=${c}: ours ${ours.perS.toFixed(2)} runs/s (${ours.runs}), bare ${bare.perS.toFixed(2)} runs/s (${bare.runs}): ${ratio(ours.perS, bare.perS).toFixed(2)}x`);
    ctx.log(`F1 c=${c} CPU ms per run: ours ${cpuText(o.cpu)}; bare ${cpuText(b.cpu)}`);
  }
  await disconnectDevices(ctx.devices.slice(0, max));
  return out;
}
