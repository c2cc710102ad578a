// What the reference device app says about its machine in `device/status`: OS, CPU and memory
// use. CPU use is measured between two calls (the kernel's busy and idle time per core), since
// an instant reading of it does not exist; load averages are not used because Windows has none.
import { cpus, freemem, platform, release, totalmem } from 'node:os';
import type { DeviceStatusPayload } from '../protocol/index.ts';

interface CpuTimes { busy: number; total: number }

function cpuTimes(): CpuTimes {
  let busy = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times;
    const all = t.user + t.nice + t.sys + t.idle + t.irq;
    total += all;
    busy += all - t.idle;
  }
  return { busy, total };
}

const round1 = (n: number) => Math.round(Math.min(100, Math.max(0, n)) * 10) / 10;

export class MachineStatus {
  private last = cpuTimes();

  /** The readings now; CPU use since the previous call (or since construction). */
  read(extra: Pick<DeviceStatusPayload, 'busy' | 'app_version'> = {}): DeviceStatusPayload {
    const now = cpuTimes();
    const total = now.total - this.last.total;
    const cpu = total > 0 ? ((now.busy - this.last.busy) / total) * 100 : 0;
    this.last = now;
    return {
      ...extra,
      os_type: platform(),
      os_version: release().slice(0, 50),
      cpu_percent: round1(cpu),
      memory_percent: round1((1 - freemem() / totalmem()) * 100),
    };
  }
}
