// `npm run simulate -- --devices 50 --latency-ms 20..200 --fail-rate 0.05 --disconnect-rate 0.01`:
// many simulated PCs against a running system (src/clients/simulator.ts). Registers the
// devices over REST (for the given user, or a throwaway one), connects them, prints a summary
// line every few seconds and a final one on Ctrl-C or after --duration-s. A step key executed
// twice is a bug: each is printed, and the exit code is 1.
import { Simulator, SIM_STEP_TYPES, type SimulatorStats } from '../src/clients/simulator.ts';
import { z } from 'zod';
import { UsageError, arg, clock, runCli, type Spec } from './lib/cli.ts';

const options = {
  devices: { schema: arg.int(1, 10_000).default(10), placeholder: 'n', help: 'how many simulated devices' },
  'latency-ms': { schema: arg.range(0).default([20, 200]), placeholder: 'min..max', help: 'each step takes a random time in this range' },
  'fail-rate': { schema: arg.number(0, 1).default(0), placeholder: 'n', help: 'probability a step fails (SIM_FAILURE, retryable)' },
  'disconnect-rate': { schema: arg.number(0, 1).default(0), placeholder: 'n', help: 'probability a step drops its socket while it runs' },
  'duration-s': { schema: arg.number(0.1).optional(), placeholder: 'n', help: 'stop after this long (default: at Ctrl-C)' },
  'every-s': { schema: arg.number(0.2).default(5), placeholder: 'n', help: 'seconds between summary lines' },
  'runs-per-s': { schema: arg.number(0, 1000).default(0), placeholder: 'n', help: 'also submit this many runs per second to random simulated devices' },
  steps: { schema: arg.int(1, 50).default(3), placeholder: 'n', help: 'steps (sim.work) per submitted run' },
  cleanup: { schema: arg.flag(), flag: true, help: 'unbind the registered devices at the end' },
  api: { schema: arg.url('http:', 'https:').default('http://127.0.0.1:3000/api/v1'), env: 'JARVIS_API', placeholder: 'url', help: 'REST base URL' },
  url: { schema: arg.url('ws:', 'wss:').optional(), env: 'JARVIS_WS', placeholder: 'ws://host:port/ws', help: 'WebSocket URL (default: the API\'s node, /ws)' },
  token: { schema: arg.text().optional(), env: 'JARVIS_TOKEN', placeholder: 'access token', help: 'register the devices for this user' },
  email: { schema: z.string().optional(), env: 'JARVIS_EMAIL', help: 'or sign in with this email' },
  password: { schema: z.string().optional(), env: 'JARVIS_PASSWORD', help: 'and this password (neither: a throwaway user is registered)' },
} satisfies Spec;

const usage = `Usage: npm run simulate -- --devices 50 --latency-ms 20..200 --fail-rate 0.05 --disconnect-rate 0.01
         [--duration-s 60] [--runs-per-s 2] [--api http://127.0.0.1:3000/api/v1] [--token <access token> | --email --password]

Registers and connects simulated devices. Their steps (${SIM_STEP_TYPES.join(', ')}; demo.fail as asked;
demo.screenshot attaches a real PNG)
sleep a random latency, fail or drop the socket at the given rates. Submit runs to them yourself
(npm run task) or with --runs-per-s. Exit code 1 when a step key ran twice.`;

runCli({ name: 'simulate', usage, options }, async ({ options: o, positionals }) => {
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if ((o.email && !o.password) || (!o.email && o.password)) throw new UsageError('--email and --password go together');

  const log = (line: string) => process.stdout.write(`${clock()} ${line}\n`);
  const sim = new Simulator({
    api: o.api, wsUrl: o.url, devices: o.devices, latencyMs: o['latency-ms'], failRate: o['fail-rate'],
    disconnectRate: o['disconnect-rate'], token: o.token, email: o.email, password: o.password,
    runsPerSecond: o['runs-per-s'], steps: o.steps, cleanup: o.cleanup, log,
  });

  let stopping = false;
  let done!: () => void;
  const finished = new Promise<void>((r) => { done = r; });
  const onSignal = () => {
    if (stopping) {
      process.stderr.write('stopping at once\n');
      process.exit(130);
    }
    done();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  log(`registering ${o.devices} device(s) at ${o.api}`);
  await sim.start();
  if (sim.user?.throwaway) {
    log(`signed in as a throwaway user: JARVIS_EMAIL=${sim.user.email} JARVIS_PASSWORD=${sim.user.password}`);
  }
  log(`devices ${sim.deviceIds.join(' ')}`);
  log(`connected ${sim.stats().connected}/${o.devices} to ${sim.wsUrl}; latency ${o['latency-ms'].join('..')} ms, fail rate ${o['fail-rate']}, disconnect rate ${o['disconnect-rate']}${o['runs-per-s'] ? `, ${o['runs-per-s']} run(s)/s` : ''}`);

  const reported = new Set<string>();
  const tick = setInterval(() => {
    log(line(sim.stats()));
    for (const d of sim.duplicates()) {
      if (reported.has(d.key)) continue;
      reported.add(d.key);
      log(`DUPLICATE ${d.key} executed ${d.executions} times`);
    }
  }, o['every-s'] * 1000);
  const timer = o['duration-s'] ? setTimeout(done, o['duration-s'] * 1000) : undefined;

  await finished;
  stopping = true;
  clearInterval(tick);
  clearTimeout(timer);
  const connectedAtEnd = sim.stats().connected;
  await sim.stop();
  const stats = { ...sim.stats(), connected: connectedAtEnd };
  for (const d of sim.duplicates()) if (!reported.has(d.key)) log(`DUPLICATE ${d.key} executed ${d.executions} times`);
  log(`final ${line(stats)}`);
  if (stats.badFrames) log(`${stats.badFrames} frame(s) from the server did not parse: server and client disagree on the protocol`);
  return stats.duplicateExecutions || stats.badFrames ? 1 : 0;
});

function line(s: SimulatorStats): string {
  return Object.entries(s).map(([k, v]) => `${k}=${v}`).join(' ');
}
