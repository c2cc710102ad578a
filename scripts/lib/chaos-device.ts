// One PC app of the chaos run, as a process of its own so the run can SIGKILL it: the reference
// device client with its key store on disk. Its step type `chaos.work` works for `ms`, then
// performs its effect: one line appended to the app's own journal, keyed by what the effect
// is for, (task, node, visit), never by attempt, so the same step performed again as a new
// attempt shows as a second line. It tells its parent when a step starts and ends (stdout),
// so the parent can fault the system while steps are in flight.
// Usage: node chaos-device.ts <ws url> <device token> <store.jsonl> <journal.jsonl>
import { appendFileSync } from 'node:fs';
import { DeviceClient, abortableSleep, fileStores } from '../../src/clients/device-client.ts';

const [url, token, storePath, journal] = process.argv.slice(2);
const { store, outbox } = fileStores(storePath);

/** The visit a step key carries: `<task>:<node>:<attempt>` is visit 1, `<task>:<node>.<n>:<attempt>` visit n. */
function visitOf(key: string, taskId: string): number {
  const node = key.slice(taskId.length + 1, key.lastIndexOf(':'));
  const dot = node.lastIndexOf('.');
  return dot >= 0 && /^\d+$/.test(node.slice(dot + 1)) ? Number(node.slice(dot + 1)) : 1;
}

const client = new DeviceClient({
  url, token, store, outbox, maxBackoffMs: 500,
  handlers: {
    'chaos.work': async (params, ctx) => {
      process.stdout.write(`start ${ctx.key}\n`);
      try {
        await abortableSleep(Number((params as { ms?: number }).ms ?? 500), ctx.signal);
        appendFileSync(journal, `${JSON.stringify({ task: ctx.taskId, node: ctx.stepId, visit: visitOf(ctx.key, ctx.taskId), key: ctx.key })}\n`);
        return { done: ctx.stepId };
      } finally {
        process.stdout.write(`end ${ctx.key}\n`);
      }
    },
  },
  onEvent: (e) => {
    if (e.type === 'connected') process.stdout.write('connected\n');
  },
});
await client.start();
