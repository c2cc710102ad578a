// F7: notification latency, from a run's end to its webhook and its Web Push at their receivers,
// against the monitor's run.completed frame of the same run (the live path every page uses).
// The receivers are on 127.0.0.1 (the server allows private webhook targets for them) and do
// what real ones do: the webhook receiver verifies the Standard Webhooks signature, the push
// service checks the VAPID signature and decrypts the payload with the browser's keys.
import { performance } from 'node:perf_hooks';
import { PushService, WebhookReceiver } from '../../lib/notification-receivers.ts';
import type { Bench } from '../harness.ts';
import { LiteSocket, connectDevices, disconnectDevices } from '../clients.ts';
import { median, percentile, until } from '../lib.ts';

export interface F7Result {
  runs: number;
  /** ms from the run.completed event's time to: the monitor's frame, the webhook, the push. */
  monitor: number[];
  webhook: number[];
  push: number[];
}

const HOOK_PATH = '/f7';

export async function f7Notifications(ctx: Bench, slot: () => number): Promise<F7Result> {
  const hooks = new WebhookReceiver();
  await hooks.start();
  const publicKey = (await ctx.rest.ok('GET', '/push/vapid-public-key')).public_key as string;
  const pushes = new PushService(publicKey);
  await pushes.start();
  const dev = ctx.devices[0];
  await connectDevices([dev], ctx.wsUrl);
  const monitor = new LiteSocket(ctx.wsUrl, ctx.rest.token, true);
  await monitor.ready();
  const hook = (await ctx.rest.ok('POST', '/webhooks', { url: `${hooks.url}${HOOK_PATH}`, kinds: ['run.completed'] })) as { webhook: { id: string }; secret: string };
  hooks.secrets.set(HOOK_PATH, hook.secret);
  const browser = pushes.subscribe();
  await ctx.rest.ok('POST', '/push/subscriptions', { ...browser.json, user_agent: 'bench' });
  const out: F7Result = { runs: 0, monitor: [], webhook: [], push: [] };
  try {
    for (let i = 0; i < ctx.sizes.f7Runs; i++) {
      if (i >= 3 && slot() < 3) {
        ctx.skipped.push(`F7 runs ${i + 1} to ${ctx.sizes.f7Runs}`);
        break;
      }
      let completed: { at: number; t: number } | null = null;
      let taskId = '';
      monitor.onFrame = (text, t) => {
        const f = JSON.parse(text) as { type: string; payload: { task_id?: string; kind?: string; at?: number } };
        if (f.type === 'task/event' && f.payload.task_id === taskId && f.payload.kind === 'run.completed') completed = { at: f.payload.at ?? 0, t };
      };
      taskId = (await ctx.rest.ok('POST', '/tasks', { workflow_id: ctx.wf.one, device_id: dev.id })).task.id as string;
      monitor.send('subscribe', { task_id: taskId, after_seq: 0 });
      const webhookOf = () => hooks.got.get(HOOK_PATH)?.find((r) => r.verified?.data.task_id === taskId);
      const pushOf = () => pushes.got.get(browser.path)?.find((p) => p.payload.task_id === taskId && p.payload.kind === 'run.completed');
      const done = await until(() => (completed && webhookOf() && pushOf() ? completed : null), 30_000, `F7 run ${i + 1}: frame, webhook and push`, 2);
      const webhook = webhookOf()!;
      const push = pushOf()!;
      if (!push.jwt) throw new Error('F7: the push\'s VAPID signature does not verify with the server\'s key');
      // The event's time is workflow time (epoch ms); frames are stamped with performance.now().
      out.monitor.push(performance.timeOrigin + done.t - done.at);
      out.webhook.push(webhook.at - done.at);
      out.push.push(push.at - done.at);
      out.runs++;
    }
  } finally {
    await monitor.close();
    await disconnectDevices([dev]);
    await ctx.rest.req('DELETE', `/webhooks/${hook.webhook.id}`);
    await hooks.stop();
    await pushes.stop();
  }
  ctx.log(`F7: p50 monitor ${median(out.monitor).toFixed(1)} ms, webhook ${median(out.webhook).toFixed(1)} ms (p99 ${percentile(out.webhook, 99).toFixed(1)}), push ${median(out.push).toFixed(1)} ms (p99 ${percentile(out.push, 99).toFixed(1)}) over ${out.runs} runs`);
  return out;
}
