// F4: monitor fan-out, one run's durable events to many monitor sockets, live and in bursts.
import { performance } from 'node:perf_hooks';
import type { Bench } from '../harness.ts';
import { LiteSocket, connectDevices, disconnectDevices, openSockets } from '../clients.ts';
import { median, percentile, ratio, sleep } from '../lib.ts';

/** F4's target, at every level: ours at least this share of bare's events/s. */
export const F4_TARGET = 0.7;

/** Live delivery of one run's events to every monitor, as it happened. */
export interface LiveFanOut {
  /** ms between the first and the last monitor getting an event, p50 / p99 over the events. */
  spreadP50: number;
  spreadP99: number;
  /** ms from the event (ours: its time in the workflow; bare: the send) to the last monitor. */
  lagP50: number;
  lagP99: number;
}

export interface F4Level {
  monitors: number;
  events: number;
  frameBytes: number;
  /** Burst: every monitor subscribes to the finished run at once and gets all its events. */
  ours: { seconds: number; perS: number; subscribedMs: number };
  bare: { seconds: number; perS: number };
  ratio: number;
  /** Live: the monitors watched the run as it happened (polls: of the run's history stream). */
  live: LiveFanOut & { polls: number | null; streams: number };
  /** Live baseline: the bare ws server sending the same frames, at the pace ours came, to as many sockets. */
  bareLive: LiveFanOut;
}

export async function f4FanOut(ctx: Bench, _slot: () => number): Promise<F4Level[]> {
  const dev = ctx.devices[0];
  await connectDevices([dev], ctx.wsUrl);
  const out: F4Level[] = [];
  const wsBare = `${ctx.bareUrl.replace(/^http/, 'ws')}/fanout`;
  // Every level, whatever the time budget: the verdict is over all of them.
  for (const m of ctx.sizes.f4Monitors) {
    const phaseEnd = Date.now() + 60_000;
    const monitors = await openSockets(m, () => new LiteSocket(ctx.wsUrl, ctx.rest.token, true));
    const ping = setInterval(() => monitors.forEach((s) => s.send('ping', {})), 5000);
    try {
      // Live: subscribe everyone right after the task is created, let it run.
      const task = (await ctx.rest.ok('POST', '/tasks', { workflow_id: ctx.wf.fanout, device_id: dev.id })).task;
      const taskId = task.id as string;
      const first = new Map<number, number>();
      const last = new Map<number, number>();
      const at = new Map<number, number>();
      const frames: string[] = [];
      let completed = 0;
      const counts = new Array<number>(m).fill(0);
      const allDone = new Promise<void>((resolve) => {
        monitors.forEach((s, i) => {
          s.onFrame = (text, t) => {
            const f = JSON.parse(text) as { type: string; payload: { task_id?: string; seq?: number; kind?: string; at?: number } };
            if (f.type !== 'task/event' || f.payload.task_id !== taskId || f.payload.seq === undefined) return;
            const seq = f.payload.seq;
            counts[i]++;
            if (i === 0) frames.push(text);
            if (!first.has(seq)) {
              first.set(seq, t);
              at.set(seq, f.payload.at ?? 0);
            }
            last.set(seq, t);
            if (f.payload.kind === 'run.completed' && ++completed === m) resolve();
          };
        });
      });
      monitors.forEach((s) => s.send('subscribe', { task_id: taskId, after_seq: 0 }));
      await Promise.race([allDone, sleep(Math.max(1000, phaseEnd - Date.now())).then(() => { throw new Error(`F4 live with ${m} monitors timed out`); })]);
      const events = counts[0];
      const { polls, streams } = await ctx.srv.call('polls', { taskId });
      // Event times are workflow time (epoch ms); deliveries are performance.now(): convert.
      const toEpoch = performance.timeOrigin;
      const spreads = [...first.keys()].map((seq) => last.get(seq)! - first.get(seq)!);
      const lags = [...first.keys()].map((seq) => toEpoch + last.get(seq)! - at.get(seq)!);

      // Burst: everyone subscribes again (after_seq 0) and gets every event from the stream.
      // One burst lasts a fraction of a second, so a hiccup of this shared machine can halve
      // it: F4_BURSTS rounds, ours and bare taking turns, and the median of each side.
      const oursBurst = async () => {
        let subscribed = 0;
        let subscribedAt = 0;
        let doneN = 0;
        const got = new Array<number>(m).fill(0);
        const burst = new Promise<number>((resolve) => {
          monitors.forEach((s, i) => {
            s.onFrame = (text, t) => {
              const f = JSON.parse(text) as { type: string; payload: { task_id?: string } };
              if (f.type === 'subscribed' && ++subscribed === m) subscribedAt = t;
              if (f.type !== 'task/event' || f.payload.task_id !== taskId) return;
              if (++got[i] === events && ++doneN === m) resolve(t);
            };
          });
        });
        const start = performance.now();
        monitors.forEach((s) => s.send('subscribe', { task_id: taskId, after_seq: 0 }));
        const end = await Promise.race([burst, sleep(30_000).then(() => { throw new Error(`F4 burst with ${m} monitors timed out`); })]);
        return { seconds: (end - start) / 1000, subscribedMs: subscribedAt ? subscribedAt - start : NaN };
      };

      // Bare: the same frames to the same number of sockets, each on its own "subscribe".
      await ctx.srv.call('bareFrames', { frames });
      const bareSocks = await openSockets(m, () => new LiteSocket(wsBare));
      const bareLive = await bareLiveFanOut(ctx, bareSocks, frames, [...first.keys()].sort((a, b) => a - b).map((seq) => first.get(seq)!));
      const bareBurst = async () => {
        let bareDone = 0;
        const bareGot = new Array<number>(m).fill(0);
        const burst = new Promise<number>((resolve) => {
          bareSocks.forEach((s, i) => {
            s.onFrame = (text, t) => {
              const f = JSON.parse(text) as { type: string };
              if (f.type !== 'task/event') return;
              if (++bareGot[i] === events && ++bareDone === m) resolve(t);
            };
          });
        });
        const start = performance.now();
        bareSocks.forEach((s) => s.send('subscribe', { task_id: taskId, after_seq: 0 }));
        const end = await Promise.race([burst, sleep(30_000).then(() => { throw new Error(`F4 bare burst with ${m} sockets timed out`); })]);
        return (end - start) / 1000;
      };
      const oursRounds: { seconds: number; subscribedMs: number }[] = [];
      const bareRounds: number[] = [];
      for (let round = 0; round < ctx.sizes.f4Bursts; round++) {
        oursRounds.push(await oursBurst());
        bareRounds.push(await bareBurst());
      }
      await Promise.all(bareSocks.map((s) => s.close()));
      const oursS = median(oursRounds.map((r) => r.seconds));
      const bareS = median(bareRounds);
      const subscribedAt = median(oursRounds.map((r) => r.subscribedMs));
      const level: F4Level = {
        monitors: m, events,
        frameBytes: frames.length ? Math.round(frames.reduce((a, f) => a + Buffer.byteLength(f), 0) / frames.length) : 0,
        ours: { seconds: oursS, perS: (m * events) / oursS, subscribedMs: subscribedAt },
        bare: { seconds: bareS, perS: (m * events) / bareS },
        ratio: ratio((m * events) / oursS, (m * events) / bareS),
        live: {
          polls, streams,
          spreadP50: median(spreads), spreadP99: percentile(spreads, 99),
          lagP50: median(lags), lagP99: percentile(lags, 99),
        },
        bareLive,
      };
      out.push(level);
      ctx.log(`F4 ${m} monitors x ${events} events: ours ${Math.round(level.ours.perS)} ev/s, bare ${Math.round(level.bare.perS)} ev/s: ${level.ratio.toFixed(2)}x; ${polls} history polls; live spread p50 ours ${level.live.spreadP50.toFixed(1)} ms, bare ${bareLive.spreadP50.toFixed(1)} ms`);
    } finally {
      clearInterval(ping);
      await Promise.all(monitors.map((s) => s.close()));
    }
  }
  await disconnectDevices([dev]);
  return out.sort((a, b) => a.monitors - b.monitors);
}

/**
 * The live baseline: the bare ws server sends the run's frames to the `socks`, spaced as ours
 * first reached a monitor (`firstAt`, performance.now() of each event in seq order), each frame
 * to every socket at once, as a fan-out without a history poll or a mirror would.
 */
async function bareLiveFanOut(ctx: Bench, socks: LiteSocket[], frames: string[], firstAt: number[]): Promise<LiveFanOut> {
  const m = socks.length;
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  let done = 0;
  const got = new Array<number>(m).fill(0);
  const all = new Promise<void>((resolve) => {
    socks.forEach((s, i) => {
      s.onFrame = (text, t) => {
        const f = JSON.parse(text) as { type: string; payload: { seq?: number } };
        if (f.type !== 'task/event' || f.payload.seq === undefined) return;
        if (!first.has(f.payload.seq)) first.set(f.payload.seq, t);
        last.set(f.payload.seq, t);
        if (++got[i] === frames.length && ++done === m) resolve();
      };
    });
  });
  const gapsMs = firstAt.map((t, i) => (i === 0 ? 0 : Math.max(0, t - firstAt[i - 1])));
  const sent = await ctx.srv.call('bareFanLive', { frames, gapsMs });
  await Promise.race([all, sleep(30_000).then(() => { throw new Error(`F4 bare live with ${m} sockets timed out`); })]);
  const seqs = [...first.keys()].sort((a, b) => a - b);
  const spreads = seqs.map((seq) => last.get(seq)! - first.get(seq)!);
  const lags = seqs.map((seq, i) => performance.timeOrigin + last.get(seq)! - sent[i]);
  return { spreadP50: median(spreads), spreadP99: percentile(spreads, 99), lagP50: median(lags), lagP99: percentile(lags, 99) };
}
