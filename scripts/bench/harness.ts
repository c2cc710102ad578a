// What the figures share: the system under test (Bench), one run of ours and one bare, a closed
// loop of them, CPU accounting, and waiting for the system to be quiet.
import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import type { Orm } from '../../src/db/orm.ts';
import { workflowIdForTask, type TaskRunResult } from '../../workflows/api.ts';
import type { bareDeviceStepsWorkflow, bareStepsWorkflow } from './bare-workflows.ts';
import type { BenchDevice, Rest } from './clients.ts';
import type { F5User } from './figures/f5-rest.ts';
import { cpuPer, cpuSample, type CpuSample } from './cpu.ts';
import { median, percentile, sleep } from './lib.ts';
import type { ServerProcess } from './server-process.ts';
import type { Sizes } from './sizes.ts';

/** The system under test, its fixtures, and the run's budget: what every figure works with. */
export interface Bench {
  srv: ServerProcess;
  rest: Rest;
  temporal: Client;
  wsUrl: string;
  bareUrl: string;
  bareQueue: string;
  devices: BenchDevice[];
  wf: { three: string; fanout: string; hold: string; one: string; long: string };
  /** Processes whose CPU time F1 accounts for. */
  pids: { temporal: number; server: number; postgres: number };
  orm: Orm;
  /** Whether the PostgreSQL server vacuums by itself (`autovacuum`). */
  autovacuum: boolean;
  sizes: Sizes;
  log: (msg: string) => void;
  /** Seconds left before the figures must be done. */
  left: () => number;
  /** What the time budget left out, for the report. */
  skipped: string[];
  /** The last run of ours that completed. */
  lastOursTask: string;
  /** F5's users (a token and a finished run each), once F5 has made them. */
  f5Users: F5User[];
}

export async function oursRun(ctx: Bench, loop: number, workflowId = ctx.wf.three): Promise<{ ms: number; taskId: string }> {
  const start = performance.now();
  const task = (await ctx.rest.ok('POST', '/tasks', { workflow_id: workflowId, device_id: ctx.devices[loop].id })).task;
  const result = await ctx.temporal.workflow.getHandle(workflowIdForTask(task.id)).result() as TaskRunResult;
  if (result.status !== 'completed') throw new Error(`run ${task.id} ended ${result.status}: ${JSON.stringify(result.error)}`);
  ctx.lastOursTask = task.id;
  return { ms: performance.now() - start, taskId: task.id };
}

let bareSeq = 0;
/**
 * One bare run of `steps` steps, from start to its result; ms. With a `device` (a socket of
 * openBareDevices), each step goes to that device and back (bareDeviceStepsWorkflow, the
 * baseline); without, each is a trivial activity (bareStepsWorkflow, Temporal alone).
 */
export async function bareRun(ctx: Bench, steps = 3, device?: number): Promise<{ ms: number; workflowId: string }> {
  const start = performance.now();
  const workflowId = `bare-${device === undefined ? 'steps' : 'device'}-${process.pid}-${++bareSeq}`;
  if (device === undefined) {
    await ctx.temporal.workflow.execute<typeof bareStepsWorkflow>('bareStepsWorkflow', {
      taskQueue: ctx.bareQueue, workflowId, args: [steps],
    });
  } else {
    await ctx.temporal.workflow.execute<typeof bareDeviceStepsWorkflow>('bareDeviceStepsWorkflow', {
      taskQueue: ctx.bareQueue, workflowId, args: [device, steps],
    });
  }
  return { ms: performance.now() - start, workflowId };
}

export interface LoopResult {
  runs: number;
  seconds: number;
  perS: number;
  p50Ms: number;
  p99Ms: number;
  durations: number[];
  ids: string[];
}

/** `concurrency` loops (0..concurrency-1) each starting one run after the other, bounded in runs and in time. */
export async function closedLoop(concurrency: number, maxRuns: number, maxS: number, one: (loop: number) => Promise<{ ms: number; id: string }>, minRuns = 0): Promise<LoopResult> {
  const durations: number[] = [];
  const ids: string[] = [];
  let started = 0;
  const begin = performance.now();
  const deadline = begin + maxS * 1000;
  let end = begin;
  await Promise.all(Array.from({ length: concurrency }, async (_, loop) => {
    while (started < maxRuns && (started < minRuns || performance.now() < deadline)) {
      started++;
      const r = await one(loop);
      durations.push(r.ms);
      ids.push(r.id);
      end = performance.now();
    }
  }));
  const seconds = (end - begin) / 1000;
  return {
    runs: durations.length, seconds, perS: durations.length / seconds,
    p50Ms: median(durations), p99Ms: percentile(durations, 99), durations, ids,
  };
}

/**
 * Waits (20 s at most) until the work left by the figures before has drained: the Temporal dev
 * server, PostgreSQL (autovacuum of the tables F1 filled) and the server process together under
 * a fifth of a core over a second. A figure measured in the middle of that work measures it too,
 * unevenly between its sides, and the ratio of ours to bare would move from one run to the next.
 */
export async function quiet(ctx: Bench, figure: string): Promise<void> {
  const start = performance.now();
  for (;;) {
    const a = cpuSample(ctx.pids);
    await sleep(1000);
    const b = cpuSample(ctx.pids);
    const busyMs = b.temporal - a.temporal + b.postgres - a.postgres + b.server - a.server;
    const waited = (performance.now() - start) / 1000;
    if (busyMs < 200 || waited >= 20) {
      ctx.log(`${figure}: the system was quiet after ${waited.toFixed(0)} s (${busyMs} ms CPU in the last second)`);
      return;
    }
  }
}

/**
 * A PostgreSQL server without autovacuum (this machine's runs so; PostgreSQL's default and any
 * production setup have it on: docs/operations.md) keeps every row version the figures before
 * left behind (F1 alone: four updates of each task row, two of each step row), and every later
 * read of those rows steps over them. Before the read-only figure, the bench vacuums once, as
 * autovacuum would have by then; ours and bare read the same row, but only ours reads its steps.
 */
export async function vacuumed(ctx: Bench, figure: string): Promise<void> {
  if (ctx.autovacuum) return;
  const start = performance.now();
  await ctx.orm.em.fork().getConnection().execute('vacuum (analyze) tasks, task_steps, task_events');
  ctx.log(`${figure}: vacuumed the tables the figures before wrote (no autovacuum here), ${Math.round(performance.now() - start)} ms`);
}

/** Some work with the CPU each process group spent on it, per unit of the work's result. */
export async function accounted<T>(ctx: Bench, work: () => Promise<T>, units: (r: T) => number): Promise<{ result: T; cpu: CpuSample }> {
  const before = cpuSample(ctx.pids);
  const result = await work();
  return { result, cpu: cpuPer(before, cpuSample(ctx.pids), units(result)) };
}
