// Where the production topology's programs live: Temporal's server and SQL schema tool, the
// Temporal UI server (all built from the Go module proxy by scripts/setup.ts, cached outside the
// clone like the CLI) and Debian's HAProxy. Shared by setup (which builds) and the cluster (which runs).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The same server as the CLI's dev server (CLI v1.5.1 embeds server 1.29.1 and UI 2.42.1). */
export const SERVER_VERSION = 'v1.29.1';
export const UI_VERSION = 'v2.42.1';

export const cacheRoot = process.env.JARVIS_CACHE_DIR ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'jarvis');

const serverDir = join(cacheRoot, `temporal-server-${SERVER_VERSION}`);
const uiDir = join(cacheRoot, `temporal-ui-server-${UI_VERSION}`);

export const binaries = {
  /** go.temporal.io/server/cmd/server */
  server: join(serverDir, 'server'),
  /** go.temporal.io/server/cmd/tools/sql (temporal-sql-tool) */
  sqlTool: join(serverDir, 'sql'),
  /** github.com/temporalio/ui-server/v2/cmd/server */
  ui: join(uiDir, 'server'),
  haproxy: '/usr/sbin/haproxy',
};

export function missingBinaries(): string[] {
  return Object.entries(binaries).filter(([, p]) => !existsSync(p)).map(([name]) => name);
}

type Log = (msg: string) => void;

function goInstall(log: Log, dir: string, pkgs: string[]): boolean {
  mkdirSync(dir, { recursive: true });
  log(`go install ${pkgs.join(' ')} into ${dir} (a few minutes, once per machine)`);
  const res = spawnSync('go', ['install', ...pkgs], {
    env: { ...process.env, GOBIN: dir, CGO_ENABLED: process.env.CGO_ENABLED ?? '0' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (res.error) log(`go install failed to start: ${res.error.message} (is Go installed and on PATH?)`);
  return res.status === 0;
}

/** Builds whatever is missing; throws when something cannot be had. */
export function ensureClusterBinaries(log: Log): void {
  if (!existsSync(binaries.server) || !existsSync(binaries.sqlTool)) {
    const ok = goInstall(log, serverDir, [
      `go.temporal.io/server/cmd/server@${SERVER_VERSION}`,
      `go.temporal.io/server/cmd/tools/sql@${SERVER_VERSION}`,
    ]);
    if (!ok) throw new Error(`could not build Temporal server ${SERVER_VERSION}`);
  }
  if (!existsSync(binaries.ui)) {
    const ok = goInstall(log, uiDir, [`github.com/temporalio/ui-server/v2/cmd/server@${UI_VERSION}`]);
    if (!ok) throw new Error(`could not build the Temporal UI server ${UI_VERSION}`);
  }
  if (!existsSync(binaries.haproxy)) {
    if (process.getuid?.() !== 0) throw new Error(`${binaries.haproxy} is missing: sudo apt-get install haproxy`);
    log('installing HAProxy with apt-get (once per machine)');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const update = spawnSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (update.status === 0) spawnSync('apt-get', ['install', '-y', '-qq', 'haproxy'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (!existsSync(binaries.haproxy)) throw new Error('could not install HAProxy');
  }
}
