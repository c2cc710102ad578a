// A PC app in a process of its own, for tests that kill it hard (SIGKILL): the reference device
// client with its key store and outbox on disk. Its one step type appends the step's key to a
// side-effect file (the "effect" a step has on the PC), then works for `ms`.
// Usage: node device-child.ts <ws url> <device token> <store.jsonl> <effects file>
import { appendFileSync } from 'node:fs';
import { DeviceClient, abortableSleep, fileStores } from '../../src/clients/device-client.ts';

const [url, token, storePath, effects] = process.argv.slice(2);
const { store, outbox } = fileStores(storePath);
const client = new DeviceClient({
  url, token, store, outbox, maxBackoffMs: 500,
  handlers: {
    'test.effect': async (params, ctx) => {
      appendFileSync(effects, `${ctx.key}\n`);
      await abortableSleep(Number((params as { ms?: number }).ms ?? 100), ctx.signal);
      return { done: ctx.key };
    },
  },
  onEvent: (e) => {
    if (e.type === 'connected') process.stdout.write('connected\n');
  },
});
await client.start();
