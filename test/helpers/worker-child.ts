// The production task worker entry (workers/task-worker.ts) in a process of its own, for tests
// that kill it hard (SIGKILL): it serves the given system's task queue with the system's
// settings, so whatever the in-process worker would run (runs, deliveries) runs there instead.
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { Config } from '../../src/config.ts';
import { stopChild } from '../../src/temporal/dev-server.ts';

const ENTRY = resolve(import.meta.dirname, '..', '..', 'workers', 'task-worker.ts');

export interface WorkerChild {
  child: ChildProcess;
  /** kill -9: no shutdown, in-flight activities are simply lost to Temporal's timeouts. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the worker with `env` (the system's settings as environment variables) and waits
 * until it polls its task queue (its "task worker running" log line).
 */
export async function startWorkerChild(config: Config, env: Record<string, string>): Promise<WorkerChild> {
  const child = spawn(process.execPath, [ENTRY], {
    env: {
      PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '',
      NODE_ENV: 'test', DATABASE_URL: config.DATABASE_URL, TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS ?? '',
      TASK_QUEUE: config.TASK_QUEUE, NODE_ID: `${config.NODE_ID}-worker-${Date.now()}`, ...env,
      // The readiness line is at info.
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((ready, fail) => {
    const onData = (d: Buffer) => {
      output += d;
      if (output.includes('task worker running')) {
        child.stdout!.off('data', onData);
        ready();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d) => (output += d));
    child.once('exit', (code, signal) => fail(new Error(`the worker exited (${code ?? signal}) before it ran:\n${output.slice(-4000)}`)));
  });
  // Keep draining its logs so a full pipe never blocks it.
  child.stdout!.resume();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    stop: () => stopChild(child),
  };
}
