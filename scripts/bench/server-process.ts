// The system under test in a child process (server.ts, with --expose-gc), and the IPC calls to
// it (lib.ts: ServerCommands). Used by the bench (run.ts) and the soak (scripts/soak.ts).
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { ROOT, type CommandName, type ReplyMessage, type ServerCommands, type ServerReady, type ServerSetup } from './lib.ts';

export class ServerProcess {
  readonly child: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly ready: Promise<ServerReady>;

  constructor(setup: ServerSetup, logFile: string) {
    const fd = openSync(logFile, 'a');
    this.child = fork(resolve(import.meta.dirname, 'server.ts'), [], {
      cwd: ROOT,
      // Bytecode flushing would free memory long after the GCs of a measurement: off.
      // BENCH_SERVER_NODE_ARGS adds flags, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`: a profile of
      // every thread (the workflow threads too, which the in-process profiler cannot see).
      execArgv: [
        ...process.execArgv.filter((a) => !a.startsWith('--cpu-prof')), '--expose-gc', '--no-flush-bytecode',
        ...(process.env.BENCH_SERVER_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? []),
      ],
      env: { ...process.env, NODE_ENV: 'production', BENCH_SETUP: JSON.stringify(setup) },
      stdio: ['ignore', fd, fd, 'ipc'],
    });
    closeSync(fd);
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => reject(new Error(`the server process exited (code ${code}); see ${relative(ROOT, logFile)}`)));
      this.child.on('message', (raw) => {
        const msg = raw as ServerReady | ReplyMessage;
        if ('type' in msg && msg.type === 'ready') return resolve(msg);
        const r = msg as ReplyMessage;
        const p = this.pending.get(r.id);
        if (!p) return;
        this.pending.delete(r.id);
        if (r.ok) p.resolve(r.result);
        else p.reject(new Error(r.error));
      });
    });
    this.child.once('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error('the server process exited'));
      this.pending.clear();
    });
  }

  call<K extends CommandName>(cmd: K, args?: ServerCommands[K]['args'], timeoutMs = 60_000): Promise<ServerCommands[K]['result']> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`server command ${cmd} timed out`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v as ServerCommands[K]['result']); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.child.send({ id, cmd, args });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.call('stop', undefined, 5000).catch(() => this.child.kill('SIGTERM'));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
}
