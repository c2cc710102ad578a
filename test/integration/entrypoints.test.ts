// The real entry points under plain Node (no Jest transform): `npm start`'s all-in-one and
// the separate API node and task worker, against the test Temporal server and database.
// Catches what a transform hides (ESM import of CommonJS, boot order) and checks that
// SIGINT/SIGTERM stop them cleanly.
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { freePort } from '../../src/temporal/dev-server.ts';
import { Api, addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { connectTestDevice } from '../helpers/devices.ts';
import { testEnv } from '../helpers/env.ts';

const root = resolve(import.meta.dirname, '..', '..');
const children: ChildProcess[] = [];

function run(script: string, env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn(process.execPath, [resolve(root, script)], {
    cwd: root,
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME,
      DATABASE_URL: testEnv.databaseUrl, TEMPORAL_ADDRESS: testEnv.temporalAddress, LOG_LEVEL: 'warn', ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  children.push(child);
  return { child, output: () => out };
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null) {
      c.kill('SIGKILL');
      await exited(c);
    }
  }
});

describe('entry points', () => {
  it('all-in-one boots, serves and stops on SIGINT', async () => {
    const port = await freePort();
    const { child, output } = run('workers/all-in-one.ts', { PORT: String(port), TASK_QUEUE: `tq-${port}` });
    const api = new Api(`http://127.0.0.1:${port}`);
    await eventually(async () => (await api.req('GET', '/readyz')).status === 200, 30_000, `readyz (${output()})`);
    await eventually(async () => output().includes('Press Ctrl-C to stop.'), 30_000, `banner (${output()})`);
    expect(output()).toContain(`API          http://127.0.0.1:${port}/api/v1`);
    expect(output()).toContain('Temporal UI');
    child.kill('SIGINT');
    expect(await exited(child)).toBe(0);
    // Longer than its two waits: on a busy machine a slow boot fails with the process's output.
  }, 120_000);

  it('a separate API node and task worker run a task together and stop on SIGTERM', async () => {
    const port = await freePort();
    const env = { PORT: String(port), TASK_QUEUE: `tq-${port}`, NODE_ID: `entry-${port}` };
    const apiNode = run('workers/api.ts', env);
    const worker = run('workers/task-worker.ts', env);
    const api = new Api(`http://127.0.0.1:${port}`);
    await eventually(async () => (await api.req('GET', '/readyz')).status === 200, 30_000, `readyz (${apiNode.output()})`);
    const user = await signup(api);
    const device = await addDevice(api, user.token);
    const pc = await connectTestDevice(`ws://127.0.0.1:${port}/ws`, device.deviceToken);
    const wf = await addWorkflow(api, user.token, linear([{ type: 'demo.echo', params: { via: 'entry points' } }]));
    const taskId = (await api.post('/tasks', { workflow_id: wf, device_id: device.id }, user.token)).body.data.task.id;
    await eventually(async () => (await api.get(`/tasks/${taskId}`, user.token)).body.data.task.status === 'completed',
      30_000, `task completed (${worker.output()})`);
    await pc.client.stop();
    apiNode.child.kill('SIGTERM');
    worker.child.kill('SIGTERM');
    expect(await exited(apiNode.child)).toBe(0);
    expect(await exited(worker.child)).toBe(0);
  });
});
