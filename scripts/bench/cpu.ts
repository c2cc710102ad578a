// CPU time by process group, read from /proc: where a figure's work went on this machine. F1 is
// bound by the cores that the Temporal dev server, PostgreSQL, our server and the bench driver
// share, so what each side costs per run, process by process, says what is ours to cut.
import { readdirSync, readFileSync } from 'node:fs';

export type CpuGroup = 'temporal' | 'postgres' | 'server' | 'driver';
/** The server process by thread: JS main thread, workflow threads, Temporal core (Rust), V8 helpers. */
export type ServerThreads = 'main' | 'workflows' | 'core' | 'v8' | 'other';
export type CpuSample = Record<CpuGroup, number> & { threads: Record<ServerThreads, number> };

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** utime + stime, ms, of a process's or a thread's `stat` file. */
function statMs(path: string): number {
  const stat = readFileSync(path, 'utf8');
  // Fields after the command name (which may hold spaces) start after its closing parenthesis.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime (fields 14 and 15)
}

/** utime + stime of one process, ms (0 when it is gone). */
function processMs(pid: number): number {
  try {
    return statMs(`/proc/${pid}/stat`);
  } catch {
    return 0;
  }
}

/** cutime + cstime of a process, ms: what its children that ended (and were waited for) spent. */
function endedChildrenMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) * TICK_MS; // cutime, cstime (fields 16 and 17)
  } catch {
    return 0;
  }
}

/** A process's parent pid (0 when it is gone). */
function parentPid(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/**
 * The postgres processes of the bench's PostgreSQL server: its postmaster and every process it
 * forked (backends, one per connection, the WAL writer, the checkpointer), summed. Another
 * PostgreSQL server on the machine (other work's) is not counted; without the postmaster's pid,
 * every postgres process is.
 */
function postgresMs(postmaster: number): number {
  let ms = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    try {
      if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() !== 'postgres') continue;
      if (postmaster && pid !== postmaster && parentPid(pid) !== postmaster) continue;
      ms += processMs(pid);
    } catch {
      // gone between the listing and the read
    }
  }
  // A backend that ended (the pool closes idle connections) takes its time out of the sum above:
  // the postmaster has it, as its ended children's.
  return postmaster ? ms + endedChildrenMs(postmaster) : ms;
}

/** The postmaster of the server behind a backend (its parent), 0 when not on this machine. */
export function postmasterOf(backendPid: number): number {
  const pid = parentPid(backendPid);
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres' ? pid : 0;
  } catch {
    return 0;
  }
}

/** Thread names (comm) as Node and the Temporal SDK set them. */
function threadGroup(comm: string): ServerThreads {
  if (comm === 'MainThread' || comm === 'node') return 'main';
  if (comm === 'WorkerThread' || comm.startsWith('workflow-')) return 'workflows';
  if (comm.startsWith('tokio')) return 'core';
  if (comm.startsWith('V8') || comm === 'DelayedTaskSche') return 'v8';
  return 'other';
}

function threadsMs(pid: number): Record<ServerThreads, number> {
  const out = Object.fromEntries(THREADS.map((k) => [k, 0])) as Record<ServerThreads, number>;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out[threadGroup(comm)] += statMs(`/proc/${pid}/task/${tid}/stat`);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

export function cpuSample(pids: { temporal: number; server: number; postgres?: number }): CpuSample {
  return {
    temporal: processMs(pids.temporal),
    postgres: postgresMs(pids.postgres ?? 0),
    server: processMs(pids.server),
    driver: processMs(process.pid),
    threads: threadsMs(pids.server),
  };
}

const GROUPS: readonly CpuGroup[] = ['temporal', 'postgres', 'server', 'driver'];
const THREADS: readonly ServerThreads[] = ['main', 'workflows', 'core', 'v8', 'other'];

/** A sample made field by field from the same field of several samples. */
function fieldwise(xs: CpuSample[], f: (values: number[]) => number): CpuSample {
  const out = { threads: {} } as CpuSample;
  for (const k of GROUPS) out[k] = f(xs.map((x) => x[k]));
  for (const k of THREADS) out.threads[k] = f(xs.map((x) => x.threads[k]));
  return out;
}

/** CPU ms per unit (a run, 1,000 requests) between two samples, by group. Without the postmaster's pid, backends that exited in between are missed. */
export function cpuPer(a: CpuSample, b: CpuSample, units: number): CpuSample {
  const n = Math.max(1, units);
  return fieldwise([a, b], ([x, y]) => Math.max(0, y - x) / n);
}

export function cpuMean(xs: CpuSample[]): CpuSample {
  const n = Math.max(1, xs.length);
  return fieldwise(xs, (vs) => vs.reduce((a, v) => a + v, 0) / n);
}

export function cpuText(x: CpuSample): string {
  const t = x.threads;
  return `temporal ${x.temporal.toFixed(1)}, pg ${x.postgres.toFixed(1)}, server ${x.server.toFixed(1)} ` +
    `(main ${t.main.toFixed(1)}, workflows ${t.workflows.toFixed(1)}, core ${t.core.toFixed(1)}, v8 ${t.v8.toFixed(1)}), driver ${x.driver.toFixed(1)}`;
}
