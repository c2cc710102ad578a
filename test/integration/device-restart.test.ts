// A PC app killed hard (SIGKILL) in the middle of a step, then started again with the same key
// store: the engine dispatches the same key again once the device is back, and the app must not
// run it a second time (it cannot know whether its half-done step took effect). It answers
// STEP_INTERRUPTED (retryable), and the workflow's retry policy decides: a new attempt under a
// new key, or the run fails. Real processes, real Temporal, real sockets.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

const CHILD = resolve(import.meta.dirname, '..', 'helpers', 'device-child.ts');
const dir = mkdtempSync(join(tmpdir(), 'device-restart-'));
const storePath = join(dir, 'store.jsonl');
const effects = join(dir, 'effects.txt');

let sys: System;
let user: { token: string };
let device: { id: string; deviceToken: string };
let child: ChildProcess | null = null;

async function startApp(): Promise<void> {
  const c = spawn(process.execPath, [CHILD, sys.wsUrl, device.deviceToken, storePath, effects], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' },
  });
  child = c;
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error('device app did not connect')), 20_000);
    c.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('connected')) {
        clearTimeout(timer);
        res();
      }
    });
  });
}

function killApp(): Promise<void> {
  const c = child!;
  child = null;
  return new Promise((res) => {
    c.once('exit', () => res());
    c.kill('SIGKILL');
  });
}

const effectLines = () => (existsSync(effects) ? readFileSync(effects, 'utf8').split('\n').filter(Boolean) : []);

async function submitAndKillMidStep(retry: { maxAttempts: number; initialIntervalMs?: number }) {
  const wf = await addWorkflow(sys.api, user.token, linear([{ type: 'test.effect', params: { ms: 4000 }, retry }]));
  const res = await sys.api.post('/tasks', { workflow_id: wf, device_id: device.id }, user.token);
  expect(res.status).toBe(201);
  const taskId = res.body.data.task.id as string;
  const firstKey = `${taskId}:s1:1`;
  await eventually(async () => effectLines().includes(firstKey), 20_000, 'the step to start on the PC');
  await killApp(); // in the middle of the step
  await startApp();
  const task = await eventually(async () => {
    const t = (await sys.api.get(`/tasks/${taskId}`, user.token)).body.data.task;
    return ['completed', 'failed', 'cancelled'].includes(t.status) && t;
  }, 40_000, 'the run to end');
  return { taskId, task, firstKey };
}

beforeAll(async () => {
  sys = await startSystem();
  user = await signup(sys.api);
  device = await addDevice(sys.api, user.token);
  await startApp();
});

afterAll(async () => {
  if (child) await killApp();
  await sys?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a device app killed in the middle of a step', () => {
  it('never runs that key again; a retry under a new key completes the run', async () => {
    const { taskId, task, firstKey } = await submitAndKillMidStep({ maxAttempts: 2, initialIntervalMs: 100 });
    expect(task.status).toBe('completed');
    const mine = effectLines().filter((k) => k.startsWith(taskId));
    expect(mine).toEqual([firstKey, `${taskId}:s1:2`]); // each key's effect exactly once
    expect(task.steps.map((s: { attempt: number; status: string; error: { code?: string } | null }) => [s.attempt, s.status, s.error?.code ?? null]))
      .toEqual([[1, 'failed', 'STEP_INTERRUPTED'], [2, 'completed', null]]);
  }, 90_000);

  it('fails the run with STEP_INTERRUPTED when the step may not be retried', async () => {
    const { taskId, task, firstKey } = await submitAndKillMidStep({ maxAttempts: 1 });
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('STEP_INTERRUPTED');
    expect(effectLines().filter((k) => k.startsWith(taskId))).toEqual([firstKey]);
  }, 90_000);
});
