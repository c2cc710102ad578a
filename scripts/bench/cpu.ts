// CPU time by process group, read from /proc: where a figure's work went on this machine. F1 is
// bound by the cores that the Temporal dev server, PostgreSQL, our server and the bench driver
// share, so what each side costs per run, process by process, says what is ours to cut.
import { readdirSync, readFileSync } from 'node:fs';

export type CpuGroup = 'temporal' | 'postgres' | 'server' | 'driver';
export type CpuSample = Record<CpuGroup, number>;

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** utime + stime of one process, ms (0 when it is gone). */
function processMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after its closing parenthesis.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime (fields 14 and 15)
  } catch {
    return 0;
  }
}

/** Every postgres process: the backends are forked per connection, so they are summed by name. */
function postgresMs(): number {
  let ms = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() === 'postgres') ms += processMs(Number(name));
    } catch {
      // gone between the listing and the read
    }
  }
  return ms;
}

export function cpuSample(pids: { temporal: number; server: number }): CpuSample {
  return {
    temporal: processMs(pids.temporal),
    postgres: postgresMs(),
    server: processMs(pids.server),
    driver: processMs(process.pid),
  };
}

/** CPU ms per unit (a run, 1,000 requests) between two samples, by group. Backends that exited in between are missed. */
export function cpuPerRun(a: CpuSample, b: CpuSample, runs: number): CpuSample {
  const per = (k: CpuGroup) => Math.max(0, b[k] - a[k]) / Math.max(1, runs);
  return { temporal: per('temporal'), postgres: per('postgres'), server: per('server'), driver: per('driver') };
}

export function cpuMean(xs: CpuSample[]): CpuSample {
  const mean = (k: CpuGroup) => xs.reduce((a, x) => a + x[k], 0) / Math.max(1, xs.length);
  return { temporal: mean('temporal'), postgres: mean('postgres'), server: mean('server'), driver: mean('driver') };
}

export function cpuText(x: CpuSample): string {
  return `temporal ${x.temporal.toFixed(1)}, pg ${x.postgres.toFixed(1)}, server ${x.server.toFixed(1)}, driver ${x.driver.toFixed(1)}`;
}
