// One-time set-up run before `npm start` and `npm test`: builds the Temporal CLI (which
// carries the dev server and its UI) from the Go module proxy into a cache outside the
// clone, then links it into .tools/bin/temporal. A no-op once the binary is there.
// With --cluster, also the production topology's programs (scripts/cluster/binaries.ts).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cacheRoot, ensureClusterBinaries } from './cluster/binaries.ts';
import { arg, readCommandLine } from './lib/cli.ts';

const ROOT = resolve(import.meta.dirname, '..');
// v1.5.1 embeds server 1.29 and UI 2.42; v1.6+ cannot be `go install`ed. Older tags are fallbacks.
const VERSIONS = ['v1.5.1', 'v1.5.0', 'v1.4.1'];
const link = join(ROOT, '.tools', 'bin', 'temporal');

function log(msg: string) {
  process.stderr.write(`[setup] ${msg}\n`);
}

function cachedBinary(version: string) {
  return join(cacheRoot, `temporal-cli-${version}`, 'temporal');
}

function build(version: string): string | undefined {
  const dir = join(cacheRoot, `temporal-cli-${version}`);
  mkdirSync(dir, { recursive: true });
  log(`building the Temporal CLI ${version} with go install (a few minutes, once per machine) into ${dir}`);
  const res = spawnSync('go', ['install', `github.com/temporalio/cli/cmd/temporal@${version}`], {
    env: { ...process.env, GOBIN: dir, CGO_ENABLED: process.env.CGO_ENABLED ?? '0' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (res.error) log(`go install failed to start: ${res.error.message} (is Go installed and on PATH?)`);
  const bin = cachedBinary(version);
  if (res.status === 0 && existsSync(bin)) return bin;
  log(`go install of ${version} failed (exit ${res.status})`);
  return undefined;
}

function ensureTemporal(): string {
  for (const v of VERSIONS) if (existsSync(cachedBinary(v))) return cachedBinary(v);
  for (const v of VERSIONS) {
    const bin = build(v);
    if (bin) return bin;
  }
  throw new Error('could not build the Temporal CLI from any of ' + VERSIONS.join(', ') +
    '; set TEMPORAL_ADDRESS to use an existing Temporal server instead');
}

function linkInto(bin: string) {
  mkdirSync(join(ROOT, '.tools', 'bin'), { recursive: true });
  let current: string | undefined;
  try { current = readlinkSync(link); } catch { current = undefined; }
  if (current === bin) return;
  rmSync(link, { force: true });
  symlinkSync(bin, link);
}

/**
 * The page tests drive Debian's Chromium (browsers cannot be downloaded here). Installed with
 * apt when missing and we are root; otherwise say what to run.
 */
function ensureChromium() {
  const bin = '/usr/bin/chromium';
  if (existsSync(bin)) return;
  if (process.getuid?.() !== 0) {
    log(`${bin} is missing: install it with "sudo apt-get install chromium" (the page tests need it)`);
    return;
  }
  log('installing Chromium with apt-get for the page tests (once per machine)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  const install = update.status === 0
    ? spawnSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: ['ignore', 'ignore', 'inherit'], env })
    : update;
  if (install.status !== 0 || !existsSync(bin)) log('could not install Chromium; the page tests will fail until it is installed');
}

const { options: opts } = readCommandLine({
  name: 'setup',
  usage: `Usage: node scripts/setup.ts [--with-browser] [--cluster]

Builds the Temporal CLI once (cached outside the clone) and links it into .tools/bin/temporal.`,
  options: {
    'with-browser': { schema: arg.flag(), flag: true, help: 'also install Chromium with apt-get (the page tests need it)' },
    cluster: { schema: arg.flag(), flag: true, help: 'also build the Temporal server, its SQL tool and UI server, and install HAProxy (npm run cluster)' },
  },
});

if (opts['with-browser']) ensureChromium();
if (opts.cluster) ensureClusterBinaries(log);

if (process.env.TEMPORAL_ADDRESS && process.env.JARVIS_SETUP_FORCE !== '1') {
  log(`TEMPORAL_ADDRESS is set (${process.env.TEMPORAL_ADDRESS}): no local Temporal server needed`);
} else {
  const bin = ensureTemporal();
  linkInto(bin);
  const version = execFileSync(link, ['--version'], { encoding: 'utf8' }).trim();
  log(`${version} at .tools/bin/temporal`);
}
