// A PC app as a process of its own (test/helpers/device-child.ts), for tests that kill it hard
// (SIGKILL) and start it again with the same key store: what a crash of the real app does.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const CHILD = resolve(import.meta.dirname, 'device-child.ts');

export class DeviceProcess {
  private readonly dir = mkdtempSync(join(tmpdir(), 'device-process-'));
  private readonly storePath = join(this.dir, 'store.jsonl');
  private readonly effectsPath = join(this.dir, 'effects.txt');
  private child: ChildProcess | null = null;

  private readonly wsUrl: string;
  private readonly deviceToken: string;

  constructor(wsUrl: string, deviceToken: string) {
    this.wsUrl = wsUrl;
    this.deviceToken = deviceToken;
  }

  /** Starts the app; resolves once it is connected. */
  async start(): Promise<void> {
    const c = spawn(process.execPath, [CHILD, this.wsUrl, this.deviceToken, this.storePath, this.effectsPath], {
      stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' },
    });
    this.child = c;
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error('device app did not connect')), 20_000);
      c.once('exit', (code) => rej(new Error(`device app exited (${code}) before it connected`)));
      c.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('connected')) {
          clearTimeout(timer);
          res();
        }
      });
    });
  }

  /** SIGKILL: no goodbye, no flush; resolves once the process is gone. */
  kill(): Promise<void> {
    const c = this.child;
    this.child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise((res) => {
      c.once('exit', () => res());
      c.kill('SIGKILL');
    });
  }

  /** The step keys whose effect the app performed, in order (its own record, not the server's). */
  effects(prefix = ''): string[] {
    if (!existsSync(this.effectsPath)) return [];
    return readFileSync(this.effectsPath, 'utf8').split('\n').filter((k) => k && k.startsWith(prefix));
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
