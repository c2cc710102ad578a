// The cluster's child processes by name: each logs to its own file, can be killed (kill -9 in
// the failure tests) and started again with the same command, and all stop together, in the
// reverse order of their start.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
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

  /** The last lines of a process's log: why it exited, for the error that says so. */
  logTail(name: string, lines = 5): string {
    try {
      return readFileSync(join(this.logDir, `${name}.log`), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
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

  /**
   * SIGTERM to each wave in turn (clients before the servers they need), the processes of one
   * wave together, each SIGKILLed after the grace; then the ones no wave named, newest first.
   */
  async stopAll(graceMs = 10_000, waves: string[][] = []): Promise<void> {
    const named = new Set(waves.flat());
    const rest = [...this.order].reverse().filter((n) => !named.has(n)).map((n) => [n]);
    for (const wave of [...waves, ...rest]) {
      await Promise.all(wave.filter((n) => this.running(n)).map(async (name) => {
        const done = this.exited(name);
        this.children.get(name)!.kill('SIGTERM');
        const timer = setTimeout(() => this.children.get(name)?.kill('SIGKILL'), graceMs);
        await done;
        clearTimeout(timer);
      }));
    }
  }

  /** Last resort on an abrupt exit of the parent: nothing may outlive it. */
  killAllNow(): void {
    for (const c of this.children.values()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}
