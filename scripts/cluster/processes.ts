// The cluster's child processes by name: each logs to its own file, can be killed (kill -9 in
// the failure tests) and started again with the same command, and all stop together, in the
// reverse order of their start.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

export class Processes {
  private readonly specs = new Map<string, ProcessSpec>();
  private readonly children = new Map<string, ChildProcess>();
  private readonly order: string[] = [];
  readonly logDir: string;

  constructor(logDir: string) {
    this.logDir = logDir;
    mkdirSync(logDir, { recursive: true });
  }

  /** Starts a process (or the same one again after a kill). Resolves once it is spawned. */
  async start(spec: ProcessSpec): Promise<ChildProcess> {
    this.specs.set(spec.name, spec);
    if (!this.order.includes(spec.name)) this.order.push(spec.name);
    const log = createWriteStream(join(this.logDir, `${spec.name}.log`), { flags: 'a' });
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    child.once('exit', () => log.end());
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    this.children.set(spec.name, child);
    return child;
  }

  restart(name: string): Promise<ChildProcess> {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`no process named ${name}`);
    return this.start(spec);
  }

  pid(name: string): number | undefined {
    return this.children.get(name)?.pid;
  }

  running(name: string): boolean {
    const c = this.children.get(name);
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  /** Resolves when the process has exited (at once if it already has). */
  exited(name: string): Promise<void> {
    const c = this.children.get(name);
    if (!c || !this.running(name)) return Promise.resolve();
    return new Promise((r) => c.once('exit', () => r()));
  }

  /** Sends a signal (SIGKILL: the failure tests' kill -9) and waits for the exit. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const done = this.exited(name);
    this.children.get(name)?.kill(signal);
    await done;
  }

  /** SIGTERM to each, newest first (clients before the servers they need); SIGKILL after the grace. */
  async stopAll(graceMs = 10_000): Promise<void> {
    for (const name of [...this.order].reverse()) {
      if (!this.running(name)) continue;
      const done = this.exited(name);
      this.children.get(name)!.kill('SIGTERM');
      const timer = setTimeout(() => this.children.get(name)?.kill('SIGKILL'), graceMs);
      await done;
      clearTimeout(timer);
    }
  }

  /** Last resort on an abrupt exit of the parent: nothing may outlive it. */
  killAllNow(): void {
    for (const c of this.children.values()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}
