// Helpers shared by the bench driver (run.ts) and the system-under-test process (server.ts):
// statistics, the IPC protocol between them, a CPU profile summary, machine facts.
import { execFileSync } from 'node:child_process';
import { cpus, totalmem, release, platform } from 'node:os';
import { relative, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');

// ---- statistics -------------------------------------------------------------------------------

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  // Nearest rank: p99 of 50 samples is the largest one.
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank];
}

export const median = (xs: number[]) => percentile(xs, 50);
export const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** ours / bare, or NaN when either is not a positive finite number. */
export function ratio(ours: number, bare: number): number {
  return Number.isFinite(ours) && Number.isFinite(bare) && bare > 0 ? ours / bare : NaN;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}

/** Polls `check` every `everyMs` until it returns truthy; throws after `timeoutMs`. */
export async function until<T>(check: () => T | Promise<T>, timeoutMs: number, what: string, everyMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

// ---- the IPC protocol between run.ts and server.ts --------------------------------------------

/** What the driver hands the server process (env BENCH_SETUP, JSON). */
export interface ServerSetup {
  temporalAddress: string;
  databaseUrl: string;
  /** Our workflow bundle (workflows/index.ts) and the bare one (bare-workflows.ts). */
  workflowBundle: string;
  bareBundle: string;
  taskQueue: string;
  bareQueue: string;
  nodeId: string;
  /** LOG_LEVEL of the server; unset: the setting's default, as an operator runs it. */
  logLevel?: string;
  dataDir: string;
  /**
   * Settings the load needs beyond the defaults (rate limits, per-user caps), as environment
   * variables; everything else stays at its default.
   */
  settings: Record<string, string>;
}

export interface ServerReady {
  type: 'ready';
  /** Our API node (REST + /ws). */
  apiUrl: string;
  /** The bare koa app and bare ws server (paths /tasks/:id, /idle, /fanout, /notify, /device?n=). */
  bareUrl: string;
}

export interface MemorySample {
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  rss: number;
  /** Heap (used + external) of the worker threads, where the Temporal workers run workflows. */
  threadHeap: number;
  threads: number;
}

export interface ProfileSummary {
  /** Sampled milliseconds that were not idle. */
  busyMs: number;
  totalMs: number;
  /** Self time by function, highest first. */
  functions: { name: string; where: string; ms: number; pct: number }[];
  /** Self time by area (a package, a project folder, node internals, GC), highest first. */
  areas: { area: string; ms: number; pct: number }[];
}

export interface ServerCommands {
  memory: { args: undefined; result: MemorySample };
  /** With BENCH_HEAP_DIR set: heap snapshots of every thread, named after `label`; the files. */
  heapSnapshots: { args: { label: string }; result: string[] };
  /** Open handles and requests of the server's event loop, by type (process.getActiveResourcesInfo). */
  handles: { args: undefined; result: Record<string, number> };
  counts: { args: undefined; result: { devices: number; monitors: number; bareSockets: number; streams: number } };
  polls: { args: { taskId: string }; result: { polls: number | null; streams: number } };
  bareFrames: { args: { frames: string[] }; result: number };
  /**
   * F4's live baseline: the bare ws server sends frame i to every /fanout socket gapsMs[i] after
   * frame i - 1; the result is when each went out (epoch ms, performance.timeOrigin + now()).
   */
  bareFanLive: { args: { frames: string[]; gapsMs: number[] }; result: number[] };
  profileStart: { args: undefined; result: true };
  profileStop: { args: { top: number }; result: ProfileSummary };
  stop: { args: undefined; result: true };
}
export type CommandName = keyof ServerCommands;

export interface CommandMessage {
  id: number;
  cmd: CommandName;
  args?: unknown;
}
export type ReplyMessage = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

// ---- CPU profile summary ----------------------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

/** Self time by function and by area from a V8 CPU profile. */
export function summarizeProfile(profile: CpuProfile, top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the next delta to this sample.
    const us = deltas[i + 1] ?? 0;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + us);
  }
  const fns = new Map<string, { name: string; where: string; us: number }>();
  const areas = new Map<string, number>();
  let busy = 0;
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    total += us;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') continue;
    busy += us;
    const where = shortUrl(n.callFrame.url, n.callFrame.lineNumber);
    const key = `${name} ${where}`;
    const f = fns.get(key) ?? { name, where, us: 0 };
    f.us += us;
    fns.set(key, f);
    const area = areaOf(name, n.callFrame.url);
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const pct = (us: number) => (busy ? (us / busy) * 100 : 0);
  return {
    busyMs: busy / 1000,
    totalMs: total / 1000,
    functions: [...fns.values()].sort((a, b) => b.us - a.us).slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, ms: f.us / 1000, pct: pct(f.us) })),
    areas: [...areas.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
      .map(([area, us]) => ({ area, ms: us / 1000, pct: pct(us) })),
  };
}

function shortUrl(url: string, line: number): string {
  if (!url) return '';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('node_modules/');
  const short = nm >= 0 ? path.slice(nm + 'node_modules/'.length) : path.startsWith('/') ? relative(ROOT, path) : path;
  return `${short}:${line + 1}`;
}

function areaOf(name: string, url: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)') return '(program: native, not JS)';
  if (!url) return 'node/V8 builtins';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + 'node_modules/'.length).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  const rel = relative(ROOT, path);
  if (rel.startsWith('..')) return 'other';
  const segs = rel.split('/');
  return segs.length > 2 ? `${segs[0]}/${segs[1]}` : segs[0];
}

// ---- the machine ------------------------------------------------------------------------------

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  commit: string;
  dirty: boolean;
  temporal: string;
}

export function machineInfo(temporalBin: string): MachineInfo {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  let temporal = '';
  try {
    temporal = execFileSync(temporalBin, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    temporal = 'unknown';
  }
  const c = cpus();
  return {
    cpu: c[0]?.model?.trim() || 'unknown',
    cores: c.length,
    memoryGiB: totalmem() / 2 ** 30,
    os: `${platform()} ${release()}`,
    node: process.version,
    commit: git(['rev-parse', '--short=12', 'HEAD']) || 'unknown',
    dirty: git(['status', '--porcelain', '--untracked-files=no']).length > 0,
    temporal,
  };
}
