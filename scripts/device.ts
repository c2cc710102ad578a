// `npm run device -- --token dev_...`: this machine becomes a Jarvis device running the built-in
// demo steps (demo.echo, demo.sleep, demo.fail). Finished keys and undelivered answers live in
// a JSON-lines file, so a restart neither runs a step twice nor loses its result. One line per
// connect, dispatch and result; reconnects with backoff; Ctrl-C stops cleanly.
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { DeviceClient, MemoryKeyStore, MemoryOutbox, demoHandlers, fileStores, outboxPathFor, type KeyStore, type Outbox, type StepAnswer } from '../src/clients/device-client.ts';
import { MachineStatus } from '../src/clients/machine-status.ts';
import { CloseCode } from '../src/protocol/index.ts';
import { UsageError, arg, clock, runCli, type Spec } from './lib/cli.ts';

const options = {
  token: {
    schema: arg.text().regex(/^dev_\S+$/, 'must be a device token (dev_...), as returned by POST /api/v1/users/devices'),
    env: 'JARVIS_DEVICE_TOKEN', placeholder: 'dev_...', help: 'device token, from POST /api/v1/users/devices',
  },
  url: { schema: arg.url('ws:', 'wss:').default('ws://127.0.0.1:3000/ws'), env: 'JARVIS_WS', placeholder: 'ws://host:port/ws', help: 'WebSocket URL of an API node' },
  store: { schema: arg.text().optional(), env: 'JARVIS_DEVICE_STORE', placeholder: 'file.jsonl', help: 'finished and started step keys (JSON lines; the outbox goes next to it as .outbox.jsonl; default .data/device-<token hash>.jsonl)' },
  memory: { schema: arg.flag(), flag: true, help: 'keep finished keys and the outbox in memory only (lost on exit)' },
  'grace-ms': { schema: arg.int(0).default(5000), placeholder: 'n', help: 'on Ctrl-C, let running steps finish this long; the rest are aborted and run again on the next start' },
  'max-backoff-ms': { schema: arg.int(100).default(10_000), placeholder: 'n', help: 'longest wait between reconnect attempts' },
} satisfies Spec;

const usage = `Usage: npm run device -- --token dev_... [--url ws://127.0.0.1:3000/ws] [--store .data/device-<id>.jsonl]

Connects as a device with the built-in demo handlers (demo.echo, demo.sleep, demo.fail, demo.screenshot:
a real PNG attached to the step) and runs
the steps dispatched to it. Ctrl-C stops (a second Ctrl-C exits at once).`;

runCli({ name: 'device', usage, options }, async ({ options: o, positionals }) => {
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const token = o.token;
  const url = new URL(o.url);
  const log = (line: string) => process.stdout.write(`${clock()} ${line}\n`);
  let store: KeyStore;
  let outbox: Outbox;
  let closeStores: () => void = () => undefined;
  if (o.memory) {
    store = new MemoryKeyStore();
    outbox = new MemoryOutbox();
    log('store: memory only');
  } else {
    const path = resolve(o.store ?? `.data/device-${createHash('sha256').update(token).digest('hex').slice(0, 12)}.jsonl`);
    const files = fileStores(path);
    ({ store, outbox } = files);
    closeStores = files.close;
    log(`store: ${path} (${files.store.size} finished keys), outbox: ${outboxPathFor(path)} (${files.outbox.size} answers to deliver)`);
  }

  let fatal: string | null = null;
  let stopping = false;
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => { done = r; });
  const fromOutbox = new Set<string>();
  const replayed = new Set<string>();

  // The machine's readings on every connection and then every STATUS_EVERY_MS.
  const machine = new MachineStatus();
  const client = new DeviceClient({
    url: url.toString(), token, handlers: demoHandlers, store, outbox, maxBackoffMs: o['max-backoff-ms'],
    status: () => machine.read(),
    onEvent: (e) => {
      switch (e.type) {
        case 'connected':
          log(`connected connection=${e.connectionId}`);
          return;
        case 'disconnected':
          if (stopping) return;
          log(`disconnected code=${e.code}${e.reason ? ` (${e.reason})` : ''}`);
          if (e.code === CloseCode.TokenInvalid) fatal = `the device token was revoked or rotated, or the device unbound (${e.code}): get a new token`;
          if (e.code === CloseCode.Forbidden) fatal = `forbidden (${e.code})`;
          if (e.code === CloseCode.Replaced) fatal = `replaced (${e.code}): another app connected with this device token`;
          if (fatal) done(1);
          return;
        case 'refused':
          fatal = e.status === 401
            ? 'the server refused the device token (HTTP 401): it is wrong, rotated, or the device was unbound'
            : `the server refused the connection (HTTP ${e.status})`;
          if (e.status === 401 || e.status === 403) done(1);
          else log(fatal);
          return;
        case 'reconnecting':
          if (!stopping) log(`reconnecting in ${e.delayMs} ms (attempt ${e.attempt})`);
          return;
        case 'dispatch': {
          const p = e.payload;
          if (e.replayed) replayed.add(p.key);
          log(`dispatch ${p.key} ${p.type} attempt=${p.attempt}${e.replayed ? ' (finished before: answering from the store)' : ''}`);
          return;
        }
        case 'control':
          log(`${e.action} ${e.key}`);
          return;
        case 'queued':
          fromOutbox.add(e.answer.payload.key);
          log(`${describe(e.answer)} (offline: kept in the outbox)`);
          return;
        case 'answered': {
          const key = e.answer.payload.key;
          const note = fromOutbox.delete(key) ? ' (delivered from the outbox)' : replayed.delete(key) ? ' (replayed)' : '';
          log(`${describe(e.answer)}${note}`);
          return;
        }
        case 'error-frame':
          log(`server error: ${JSON.stringify(e.payload)}`);
          return;
        case 'bad-frame':
          log(`ignored a frame this client cannot read: ${e.error.message} ${JSON.stringify(e.error.errors ?? [])}`);
          return;
      }
    },
  });

  const stop = async (signal: string) => {
    if (stopping) {
      process.stderr.write('stopping at once\n');
      process.exit(130);
    }
    stopping = true;
    const n = client.runningKeys.length;
    log(`${signal}: stopping${n ? ` (waiting up to ${o['grace-ms']} ms for ${n} running step(s))` : ''}`);
    await client.stop({ graceMs: o['grace-ms'] });
    closeStores();
    if (client.pendingAnswers) log(`${client.pendingAnswers} answer(s) kept for the next start`);
    log('stopped');
    done(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  log(`connecting to ${url} with handlers ${Object.keys(demoHandlers).join(', ')}`);
  client.start().catch((err: Error) => {
    if (!fatal && !stopping) log(`cannot connect yet: ${err.message}`);
  });
  const readings = setInterval(() => client.sendStatus(machine.read()), STATUS_EVERY_MS);
  readings.unref();
  const code = await finished;
  clearInterval(readings);
  if (fatal) {
    await client.stop();
    closeStores();
    process.stderr.write(`device: ${fatal}\n`);
  }
  return code;
});

/** How often the machine's readings go to the server (they are shown, not acted on). */
const STATUS_EVERY_MS = 30_000;

function describe(a: StepAnswer): string {
  if (a.type === 'step/result') return `result ${a.payload.key} ok ${truncate(JSON.stringify(a.payload.output ?? null), 120)}`;
  return `result ${a.payload.key} error ${a.payload.error.code}: ${truncate(a.payload.error.message, 120)}`;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
