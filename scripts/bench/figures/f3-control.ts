// F3: control latency, pause and resume from the REST call to the device's control frame.
import { performance } from 'node:perf_hooks';
import { workflowIdForTask } from '../../../workflows/api.ts';
import type { bareControlWorkflow } from '../bare-workflows.ts';
import type { Bench } from '../harness.ts';
import { LiteSocket, connectDevices, disconnectDevices } from '../clients.ts';
import { median, sleep } from '../lib.ts';

export interface F3Result {
  reps: number;
  pause: number[];
  resume: number[];
  bare: number[];
  conflicts: number;
}

export async function f3Control(ctx: Bench, slot: () => number): Promise<F3Result> {
  const dev = ctx.devices[0];
  await connectDevices([dev], ctx.wsUrl);
  const dispatched = dev.next((e) => e.type === 'dispatch', 30_000, 'the held step');
  const task = (await ctx.rest.ok('POST', '/tasks', { workflow_id: ctx.wf.hold, device_id: dev.id })).task;
  await dispatched.promise;
  const key = `${task.id}:s1:1`;
  const pause: number[] = [];
  const resume: number[] = [];
  let conflicts = 0;
  const control = async (action: 'pause' | 'resume'): Promise<number> => {
    for (let attempt = 0; attempt < 400; attempt++) {
      const seen = dev.next((e) => e.type === 'control' && e.action === action && e.key === key, 10_000, `step/${action}`);
      const start = performance.now();
      const r = await ctx.rest.req('POST', `/tasks/${task.id}/${action}`, {});
      if (r.status === 202) return (await seen.promise) - start;
      seen.cancel();
      // The mirror has not caught up with the previous action yet: try again.
      if (r.status !== 409) throw new Error(`${action}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      conflicts++;
      await sleep(5);
    }
    throw new Error(`${action}: still 409 after 400 attempts`);
  };
  // Ours gets 3/4 of the slice (bare repeats as many cycles, faster); at least 5 cycles.
  const oursEnd = Date.now() + slot() * 750;
  for (let i = 0; i < ctx.sizes.f3Reps && (i < 5 || Date.now() < oursEnd); i++) {
    pause.push(await control('pause'));
    resume.push(await control('resume'));
  }
  if (pause.length < ctx.sizes.f3Reps) ctx.skipped.push(`F3 cycles ${pause.length + 1} to ${ctx.sizes.f3Reps}`);
  await ctx.rest.ok('POST', `/tasks/${task.id}/cancel`, {});
  await ctx.temporal.workflow.getHandle(workflowIdForTask(task.id)).result();
  await disconnectDevices([dev]);

  // Bare: signal -> workflow -> activity -> ws frame to us.
  const sock = new LiteSocket(`${ctx.bareUrl.replace(/^http/, 'ws')}/notify`);
  await sock.ready();
  const handle = await ctx.temporal.workflow.start<typeof bareControlWorkflow>('bareControlWorkflow', {
    taskQueue: ctx.bareQueue, workflowId: `bare-control-${process.pid}`,
  });
  const bare: number[] = [];
  const total = pause.length + resume.length;
  for (let i = 0; i < total; i++) {
    const got = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('bare notify timed out')), 10_000);
      sock.onFrame = (text, t) => {
        if (text === String(i)) {
          clearTimeout(timer);
          resolve(t);
        }
      };
    });
    const start = performance.now();
    await handle.signal<[number]>('poke', i);
    bare.push((await got) - start);
  }
  await handle.signal('done');
  await handle.result();
  await sock.close();
  ctx.log(`F3: pause p50 ${median(pause).toFixed(1)} ms, resume p50 ${median(resume).toFixed(1)} ms, bare p50 ${median(bare).toFixed(1)} ms (${pause.length} cycles)`);
  return { reps: pause.length, pause, resume, bare, conflicts };
}
