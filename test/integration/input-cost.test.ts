// Small inputs must not cost large: each hostile input of the hostile-tenant findings is sent to
// the real server and the main thread's CPU time it causes is compared with a normal request's,
// measured the same way in the same run (process.threadCpuUsage: CPU this thread used, which
// waiting for a busy machine's cores does not inflate). Reported as ratios; the bound is a ratio,
// not a time.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { addDevice, addWorkflow, linear, signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let user: { token: string };
let workflowId: string;
let deviceId: string;
const REPEATS = 5;
const BATCH = 8;
/**
 * A hostile input may cost at most this many normal requests. The findings cost 200-700 times a
 * normal request before the limits; this bound catches any of them coming back, with room for the
 * noise of a shared machine (moving 1 MiB costs the sending side too, in this same thread).
 */
const BOUND = 15;

beforeAll(async () => {
  sys = await startSystem({ env: { RATE_LIMIT_USER_PER_MIN: '100000', RATE_LIMIT_IP_PER_MIN: '100000' } });
  user = await signup(sys.api);
  deviceId = (await addDevice(sys.api, user.token)).id;
  workflowId = await addWorkflow(sys.api, user.token, linear([{ type: 'demo.echo' }]));
});

afterAll(async () => {
  await sys?.stop();
});

/**
 * Main-thread CPU milliseconds of one call of `fn`: the median of REPEATS samples of BATCH calls
 * each (after one warm-up), because the kernel accounts a thread's CPU in ticks of a few ms.
 */
async function busyMs(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const samples: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const before = process.threadCpuUsage();
    for (let j = 0; j < BATCH; j++) await fn();
    const used = process.threadCpuUsage(before);
    samples.push((used.user + used.system) / 1000 / BATCH);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

const post = (path: string, body: string | Uint8Array) => fetch(`${sys.url}/api/v1${path}`, {
  method: 'POST',
  headers: { Authorization: `Bearer ${user.token}`, 'Content-Type': 'application/json' },
  body,
}).then(async (r) => ({ status: r.status, text: await r.text() }));

/** ~1 MiB of JSON object with ~96k short keys: the shape that cost seconds. */
function manyKeys(bytes: number): string {
  const keys: string[] = [];
  let size = 2;
  for (let i = 0; size < bytes - 20; i++) {
    const k = `"k${i}":1`;
    keys.push(k);
    size += k.length + 1;
  }
  return `{${keys.join(',')}}`;
}

const results: { input: string; status: number | string; ms: number; ratio: number }[] = [];

afterAll(() => {
  // The report: each input's cost as a ratio to the normal request it is compared with.
  console.log(['input cost (main thread CPU per call, median of 5 batches of 8):',
    ...results.map((r) => `  ${r.input}: ${r.status}, ${r.ms.toFixed(2)} ms, ${r.ratio.toFixed(2)}x normal`)].join('\n'));
});

describe('hostile inputs cost about what a normal request costs', () => {
  it('REST bodies: many keys, deep nesting, thousands of bad templates', async () => {
    const normalBody = JSON.stringify({ workflow_id: workflowId, device_id: deviceId, parameters: { who: 'there' } });
    // A normal request that does real work: a submission refused by validation (no run started).
    const normal = await busyMs(() => post('/tasks', normalBody.replace(deviceId, 'not-a-uuid')));
    const big = manyKeys(1024 * 1024);
    const templates = JSON.stringify({
      name: 'templates',
      definition: {
        nodes: [{ id: 'start', type: 'start' },
          ...Array.from({ length: 400 }, (_, i) => ({ id: `n${i}`, type: 'demo.echo', params: Object.fromEntries(Array.from({ length: 100 }, (_, j) => [`p${j}`, `{{nope.${j}}`])) })),
          { id: 'end', type: 'end' }],
        edges: [{ from: 'start', to: 'end' }],
      },
    });
    const inputs: [string, string, string][] = [
      ['1 MiB, 96k keys, to POST /tasks', '/tasks', big],
      ['1 MiB, 96k keys, to POST /workflows', '/workflows', big],
      ['1 MiB, 96k keys, to POST /users/devices', '/users/devices', big],
      ['nesting 100k deep, to POST /workflows', '/workflows', `${'['.repeat(100_000)}${']'.repeat(100_000)}`],
      ['40,000 bad templates, to POST /workflows', '/workflows', templates],
    ];
    for (const [what, path, text] of inputs) {
      let status = 0;
      let answer = '';
      // Encoded once: what is measured is the server's work, not the client encoding 1 MiB again.
      const body = Buffer.from(text);
      const ms = await busyMs(async () => {
        const r = await post(path, body);
        status = r.status;
        answer = r.text;
      });
      results.push({ input: what, status, ms, ratio: ms / normal });
      expect([what, status >= 400 && status < 500]).toEqual([what, true]);
      // The answer stays small too (error lists are capped).
      expect([what, answer.length < 8 * 1024]).toEqual([what, true]);
    }
    results.unshift({ input: 'normal: POST /tasks refused by validation', status: 400, ms: normal, ratio: 1 });
    for (const r of results) expect([r.input, r.ratio <= BOUND]).toEqual([r.input, true]);
  }, 120_000);

  it('a log page: details are stored bounded, so 100 logs written at the body limit read like 100 small ones', async () => {
    const other = await signup(sys.api);
    const small = await signup(sys.api);
    const details = { blob: 'x'.repeat(60 * 1024) };
    for (let i = 0; i < 100; i++) {
      expect((await sys.api.post('/logs', { level: 'info', message: `big ${i}`, details }, other.token)).status).toBe(201);
      expect((await sys.api.post('/logs', { level: 'info', message: `small ${i}`, details: { i } }, small.token)).status).toBe(201);
    }
    const page = (token: string) => fetch(`${sys.url}/api/v1/logs?page_size=100`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.text());
    const normal = await busyMs(() => page(small.token));
    const ms = await busyMs(() => page(other.token));
    const bytes = (await page(other.token)).length;
    results.push({ input: `GET /logs of 100 logs written with 60 KiB details (${Math.round(bytes / 1024)} KiB answer)`, status: 200, ms, ratio: ms / normal });
    expect(bytes).toBeLessThan(400 * 1024);
    expect(ms / normal).toBeLessThanOrEqual(BOUND);
  }, 120_000);

  it('WebSocket: a 1 MiB ping from a monitor is cut by the framing layer; from a device it is refused before validation', async () => {
    const open = (token: string) => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(sys.wsUrl, { headers: { Authorization: `Bearer ${token}` } });
      ws.once('message', () => resolve(ws));
      ws.once('error', reject);
    });
    const answer = (ws: WebSocket, text: string) => new Promise<string>((resolve) => {
      ws.once('message', (raw) => resolve(raw.toString()));
      ws.once('close', (code) => resolve(`closed ${code}`));
      ws.send(text);
    });
    const device = await open((await addDevice(sys.api, user.token)).deviceToken);
    const ping = (pad: string) => JSON.stringify({ id: randomUUID(), type: 'ping', payload: { pad } });
    const size = 1024 * 1024 - 200;
    // Moving a 1 MiB frame costs both ends of this process something whatever it says: the normal
    // request to compare with is a legitimate frame of that size, a step's answer (for a key not in
    // flight, so it is parsed, validated and answered 2001, and changes nothing).
    const answerFrame = JSON.stringify({ id: randomUUID(), type: 'step/result', payload: { key: 'k-none', output: { pad: 'x'.repeat(size - 100) } } });
    const normal = await busyMs(() => answer(device, answerFrame));
    expect(JSON.parse(await answer(device, answerFrame)).payload.code).toBe(2001);
    const small = await busyMs(() => answer(device, ping('')));
    const huge = ping('x'.repeat(size));
    const ms = await busyMs(() => answer(device, huge));
    results.push({ input: `1 MiB ping from a device (vs a 1 MiB step answer; a small ping: ${small.toFixed(2)} ms)`, status: 'error 1001', ms, ratio: ms / normal });
    expect(JSON.parse(await answer(device, huge)).payload.code).toBe(1001);
    let closed = '';
    const monitorMs = await busyMs(async () => {
      const monitor = await open(user.token);
      closed = await answer(monitor, huge);
    });
    const monitorNormal = await busyMs(async () => {
      const monitor = await open(user.token);
      await answer(monitor, ping(''));
      monitor.close();
    });
    results.push({ input: '1 MiB ping from a monitor (connect included)', status: closed, ms: monitorMs, ratio: monitorMs / monitorNormal });
    expect(closed).toBe('closed 1009');
    device.close();
    expect(ms / normal).toBeLessThanOrEqual(BOUND);
    expect(monitorMs / monitorNormal).toBeLessThanOrEqual(BOUND);
  }, 120_000);
});
