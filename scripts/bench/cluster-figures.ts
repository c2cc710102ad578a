// `node scripts/bench/cluster-figures.ts`: the bench's F1 (throughput) and F3 (control latency)
// on the production topology (scripts/cluster/topology.ts: Temporal server on PostgreSQL, two
// API nodes, two task workers, HAProxy), every request and every device socket through HAProxy,
// so runs and controls cross nodes as in production. Starts a private cluster (own databases,
// dropped at the end) and prints a markdown table; docs/operations.md quotes it. No bare
// baseline here: `npm run bench` measures that against the dev server.
//   --levels 1,10,50   F1 concurrency levels      --seconds 12   F1 time per level
//   --cycles 40        F3 pause/resume cycles
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { dropClusterDatabases, privateClusterOptions, SERVICES, startCluster, type Cluster } from '../cluster/topology.ts';
import { registerDevice } from '../../src/domain/devices.ts';
import { OwnedRepos } from '../../src/db/owned.ts';
import { openOrm } from '../../src/db/orm.ts';
import { connectClient } from '../../src/temporal/client.ts';
import { workflowIdForTask, type TaskRunResult } from '../../workflows/api.ts';
import { BenchDevice, Rest, connectDevices, disconnectDevices, linear } from './clients.ts';
import { median, percentile, pool, sleep } from './lib.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const LEVELS = arg('levels', '1,10,50').split(',').map(Number);
const LEVEL_S = Number(arg('seconds', '12'));
const CYCLES = Number(arg('cycles', '40'));
const log = (msg: string) => process.stderr.write(`[cluster-figures] ${msg}\n`);

/** CPU ms each cluster process and this driver have used so far (utime + stime, 100 ticks/s). */
function cpuMs(cluster: Cluster): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of SERVICES) {
    const pid = cluster.processes.pid(name);
    try {
      // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      out[name] = (Number(fields[11]) + Number(fields[12])) * 10;
    } catch {
      out[name] = NaN;
    }
  }
  const self = process.cpuUsage();
  out.driver = (self.user + self.system) / 1000;
  return out;
}

const options = privateClusterOptions(process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', resolve(ROOT, '.data', 'bench'));
// The bench registers many devices from one address.
options.env = { RATE_LIMIT_IP_PER_MIN: '100000', RATE_LIMIT_AUTH_PER_MIN: '100000', LOG_LEVEL: 'warn' };
const load = [loadavg()[0]];
log('starting a private cluster');
const cluster = await startCluster(options);
let failed = false;
try {
  const rest = new Rest(cluster.url);
  const email = `bench-${Date.now()}@example.com`;
  await rest.ok('POST', '/auth/register', { email, password: 'bench bench bench', name: 'Bench' });
  const login = await rest.ok('POST', '/auth/login', { email, password: 'bench bench bench' });
  rest.token = login.access_token;
  const wfId = async (name: string, def: unknown) => (await rest.ok('POST', '/workflows', { name, definition: def })).workflow.id as string;
  const three = await wfId('bench: 3 echo steps', linear(3, 'bench.echo', { text: 'x' }));
  const hold = await wfId('bench: one held step', linear(1, 'bench.hold'));

  const orm = await openOrm(cluster.databaseUrl);
  const devices = await pool(Array.from({ length: Math.max(...LEVELS) }, (_, i) => i), 8, async (i) => {
    const { device, token } = await registerDevice(new OwnedRepos(orm.em.fork(), login.user.id), {
      device_id: `bench-${i}`, device_name: `Bench ${i}`, os_type: 'windows',
    }, Number.MAX_SAFE_INTEGER); // fixtures of the harness, not a user's registrations
    return new BenchDevice(device.id, token);
  });
  await orm.close(true);
  await connectDevices(devices, cluster.wsUrl);
  const temporal = await connectClient(cluster.temporalAddress, 'default');

  const run = async (lane: number): Promise<number> => {
    const start = performance.now();
    const task = (await rest.ok('POST', '/tasks', { workflow_id: three, device_id: devices[lane].id })).task;
    const result = await temporal.workflow.getHandle(workflowIdForTask(task.id)).result() as TaskRunResult;
    if (result.status !== 'completed') throw new Error(`run ${task.id} ended ${result.status}`);
    return performance.now() - start;
  };
  for (let i = 0; i < 5; i++) await run(0); // warm-up: JIT, pools, the workers' workflow caches

  // F1: closed loop, one device per lane.
  const f1: { c: number; runs: number; perS: number; p50: number; p99: number; cpu: Record<string, number> }[] = [];
  for (const c of LEVELS) {
    const durations: number[] = [];
    const cpuBefore = cpuMs(cluster);
    const begin = performance.now();
    const deadline = begin + LEVEL_S * 1000;
    let end = begin;
    await Promise.all(Array.from({ length: c }, async (_, lane) => {
      while (performance.now() < deadline) {
        durations.push(await run(lane));
        end = performance.now();
      }
    }));
    const cpuAfter = cpuMs(cluster);
    const cpu = Object.fromEntries(Object.keys(cpuAfter).map((k) => [k, (cpuAfter[k] - cpuBefore[k]) / durations.length]));
    const row = { c, runs: durations.length, perS: durations.length / ((end - begin) / 1000), p50: median(durations), p99: percentile(durations, 99), cpu };
    f1.push(row);
    log(`F1 c=${c}: ${row.perS.toFixed(2)} runs/s (${row.runs}), p50 ${row.p50.toFixed(0)} ms, p99 ${row.p99.toFixed(0)} ms`);
  }

  // F3: a run holds its device in a step; pause/resume through HAProxy, timed to the device's frame.
  const dev = devices[0];
  const dispatched = dev.next((e) => e.type === 'dispatch', 30_000, 'the held step');
  const task = (await rest.ok('POST', '/tasks', { workflow_id: hold, device_id: dev.id })).task;
  await dispatched.promise;
  const key = `${task.id}:s1:1`;
  const timings = { pause: [] as number[], resume: [] as number[] };
  let conflicts = 0;
  for (let i = 0; i < CYCLES; i++) {
    for (const action of ['pause', 'resume'] as const) {
      for (;;) {
        const seen = dev.next((e) => e.type === 'control' && e.action === action && e.key === key, 10_000, `step/${action}`);
        const start = performance.now();
        const r = await rest.req('POST', `/tasks/${task.id}/${action}`, {});
        if (r.status === 202) {
          timings[action].push((await seen.promise) - start);
          break;
        }
        seen.cancel();
        // The mirror has not caught up with the previous action yet: send it again.
        if (r.status !== 409) throw new Error(`${action}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
        conflicts++;
        await sleep(5);
      }
    }
  }
  await rest.ok('POST', `/tasks/${task.id}/cancel`, {});
  await temporal.workflow.getHandle(workflowIdForTask(task.id)).result();
  await disconnectDevices(devices);
  await temporal.connection.close();
  load.push(loadavg()[0]);

  const ms = (x: number) => `${x.toFixed(1)} ms`;
  process.stdout.write([
    `F1 (3-step runs, closed loop, ${LEVEL_S} s per level; 1-minute load average ${load.map((l) => l.toFixed(1)).join(' -> ')} on ${process.env.HOSTNAME ?? 'this machine'}):`,
    '',
    '| concurrent runs | runs/s | p50 / p99 run | runs |',
    '| --- | --- | --- | --- |',
    ...f1.map((r) => `| ${r.c} | ${r.perS.toFixed(2)} | ${r.p50.toFixed(0)} / ${r.p99.toFixed(0)} ms | ${r.runs} |`),
    '',
    'CPU ms per run by process (PostgreSQL not counted: its backends serve the whole machine):',
    '',
    `| concurrent runs | ${Object.keys(f1[0]?.cpu ?? {}).join(' | ')} |`,
    `| --- | ${Object.keys(f1[0]?.cpu ?? {}).map(() => '---').join(' | ')} |`,
    ...f1.map((r) => `| ${r.c} | ${Object.values(r.cpu).map((v) => v.toFixed(1)).join(' | ')} |`),
    '',
    `F3 (${CYCLES} cycles; ${conflicts} requests answered 409 and sent again, not counted):`,
    '',
    '| | p50 | p99 |',
    '| --- | --- | --- |',
    `| POST pause -> step/pause on the device | ${ms(median(timings.pause))} | ${ms(percentile(timings.pause, 99))} |`,
    `| POST resume -> step/resume on the device | ${ms(median(timings.resume))} | ${ms(percentile(timings.resume, 99))} |`,
    '',
  ].join('\n'));
} catch (err) {
  failed = true;
  log(`failed: ${(err as Error).stack ?? String(err)}`);
} finally {
  await cluster.stop();
  await dropClusterDatabases(options);
}
process.exit(failed ? 1 : 0);
