// CPU profiles of the server, repeating our side of each figure that missed its target.
import { type Bench, oursRun, closedLoop } from '../harness.ts';
import { LiteSocket, connectDevices, disconnectDevices, openSockets } from '../clients.ts';
import { sleep, type ProfileSummary } from '../lib.ts';
import type { Results } from '../report.ts';
import { F4_TARGET } from './f4-fan-out.ts';
import { cannon, F5_TARGET, type F5User } from './f5-rest.ts';

export interface ProfileResult {
  figure: string;
  what: string;
  summary: ProfileSummary;
}

/** A short repeat of our side of each figure that missed its target, under the CPU profiler. */
export async function profiles(ctx: Bench, r: Results, _slot: () => number): Promise<ProfileResult[]> {
  const out: ProfileResult[] = [];
  const profiled = async (figure: string, what: string, work: () => Promise<unknown>) => {
    if (ctx.left() < ctx.sizes.profileS + 4) {
      ctx.skipped.push(`the CPU profile of ${figure}`);
      return;
    }
    await ctx.srv.call('profileStart');
    try {
      await work();
    } finally {
      out.push({ figure, what, summary: await ctx.srv.call('profileStop', { top: 12 }) });
    }
  };
  const f1 = r.f1[r.f1.length - 1];
  if (f1 && f1.ratio < 0.8) {
    const c = f1.concurrency;
    await connectDevices(ctx.devices.slice(0, c), ctx.wsUrl);
    await profiled('F1', `3-step runs at concurrency ${c} for ${ctx.sizes.profileS} s`, () =>
      closedLoop(c, c * 20, ctx.sizes.profileS, async (loop) => ({ ms: (await oursRun(ctx, loop)).ms, id: '' })));
    await disconnectDevices(ctx.devices.slice(0, c));
  }
  if (r.f5 && r.f5.ratio < F5_TARGET && ctx.f5Users.length) {
    const users = ctx.f5Users;
    const root = ctx.rest.base.replace(/\/api\/v1$/, '');
    const tasks = (u: F5User) => `/api/v1/tasks/${u.taskId}`;
    await profiled('F5', `GET /tasks/:id over ${users.length} users, ${ctx.sizes.f5Connections} connections for ${ctx.sizes.profileS} s`, () =>
      cannon(root, tasks, users, ctx.sizes.profileS, ctx.sizes.f5Connections, true));
    // The same path in layers: middleware only, + authentication, + the task and its steps.
    const layers = [
      { path: '/healthz', what: 'the middleware stack (request id, metrics, errors, headers, access log)', to: () => '/healthz', auth: false },
      { path: '/api/v1/auth/me', what: `+ rate limits, JWT (verified once per token), session check (in memory, SESSION_CACHE_TTL_MS), the user (1 query, an entity); ${users.length} users in turn`, to: () => '/api/v1/auth/me', auth: true },
      { path: '/api/v1/tasks/:id', what: '+ the task and its steps (1 query, plain rows) instead of the user, presented', to: tasks, auth: true },
    ];
    for (const l of layers) {
      if (ctx.left() < ctx.sizes.profileS + 3) {
        ctx.skipped.push(`F5 layer ${l.path}`);
        continue;
      }
      const c = await cannon(root, l.to, users, ctx.sizes.profileS, ctx.sizes.f5Connections, l.auth);
      r.f5Layers.push({ path: l.path, what: l.what, perS: c.non2xx ? NaN : c.perS });
    }
    r.f5Layers.push({ path: 'bare /tasks/:id', what: 'bare koa, one pg query (the F5 baseline)', perS: r.f5.bare.perS });
  }
  // The level furthest below the target, if any.
  const f4 = [...r.f4].sort((a, b) => a.ratio - b.ratio)[0];
  if (f4 && f4.ratio < F4_TARGET) {
    const m = f4.monitors;
    const monitors = await openSockets(m, () => new LiteSocket(ctx.wsUrl, ctx.rest.token, true));
    const taskId = ctx.lastOursTask;
    let done = 0;
    const got = new Array<number>(m).fill(0);
    const events = (await ctx.rest.ok('GET', `/tasks/${taskId}/events`)).list.length as number;
    await profiled('F4', `${m} monitors subscribing to a finished ${3}-step run, three times`, async () => {
      for (let round = 0; round < 3; round++) {
        done = 0;
        got.fill(0);
        const all = new Promise<void>((resolve) => monitors.forEach((s, i) => {
          s.onFrame = (text) => {
            const f = JSON.parse(text) as { type: string };
            if (f.type === 'task/event' && ++got[i] === events && ++done === m) resolve();
          };
        }));
        monitors.forEach((s) => s.send('subscribe', { task_id: taskId, after_seq: 0 }));
        await Promise.race([all, sleep(20_000)]);
      }
    });
    await Promise.all(monitors.map((s) => s.close()));
  }
  for (const p of out) ctx.log(`profile ${p.figure}: top area ${p.summary.areas[0]?.area} ${p.summary.areas[0]?.pct.toFixed(0)}%`);
  return out;
}
