// Spawns `temporal server start-dev` as a child process: the embedded default for local runs
// and the real server the integration tests use.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createServer } from 'node:net';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../workflows/search-attributes.ts';

export const TEMPORAL_BIN = resolve(import.meta.dirname, '..', '..', '.tools', 'bin', 'temporal');

export interface DevServerOptions {
  /** SQLite file for durable state; omitted: in memory (lost when the server stops). */
  dbFile?: string;
  port: number;
  uiPort: number;
  namespace?: string;
  /** Where the server's own log lines go; default: discarded. */
  logTo?: NodeJS.WritableStream;
}

export interface DevServer {
  address: string;
  uiUrl: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  if (!existsSync(TEMPORAL_BIN)) {
    throw new Error(`${TEMPORAL_BIN} is missing: run "npm run setup" first`);
  }
  const args = [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(opts.port),
    '--ui-port', String(opts.uiPort),
    '--log-level', 'warn',
    // Search attributes become visible to list queries at once (no cache delay).
    '--dynamic-config-value', 'system.forceSearchAttributesCacheRefreshOnRead=true',
    // Task queue fairness: runs carry their account as fairness key, so one account's backlog
    // is dispatched in turn with the others' instead of ahead of them (temporal-config has the same).
    '--dynamic-config-value', 'matching.enableFairness=true',
  ];
  if (opts.dbFile) {
    mkdirSync(dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  if (opts.namespace && opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  for (const sa of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${sa.name}=${sa.type}`);

  const child = spawn(TEMPORAL_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (opts.logTo) {
    child.stdout!.pipe(opts.logTo, { end: false });
    child.stderr!.pipe(opts.logTo, { end: false });
  } else {
    child.stdout!.resume();
    child.stderr!.resume();
  }
  const address = `127.0.0.1:${opts.port}`;
  const exited = new Promise<never>((_, rej) =>
    child.once('exit', (code) => rej(new Error(`temporal dev server exited early (code ${code})`))));
  await Promise.race([waitReachable(address, 60_000), exited]);
  exited.catch(() => undefined);

  return {
    address,
    uiUrl: `http://127.0.0.1:${opts.uiPort}`,
    child,
    stop: () => stopChild(child),
  };
}

async function waitReachable(address: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.workflowService.getSystemInfo({});
        return;
      } finally {
        await conn.close();
      }
    } catch (err) {
      lastErr = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`temporal dev server at ${address} not reachable: ${String(lastErr)}`);
}

/** SIGTERM, then SIGKILL after a grace period. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}
