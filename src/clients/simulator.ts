// Simulated PCs for load and fault tests: registers N devices over REST and connects N
// reference device clients whose steps sleep a random latency, fail now and then (SIM_FAILURE,
// retryable) and drop their socket mid-step now and then. Counts every handler execution per
// step key: a key executed twice is a bug in the exactly-once delivery of steps.
// Used by `npm run simulate` (scripts/simulate.ts), the tests and benchmarks, in-process.
import { randomUUID } from 'node:crypto';
import { ApiClient } from './api-client.ts';
import {
  DeviceClient,
  StepFailure,
  abortableSleep,
  demoHandlers,
  type DeviceClientEvent,
  type StepHandler,
} from './device-client.ts';

/** Step types every simulated device answers with the simulated work (plus demo.fail as asked, demo.screenshot for real). */
export const SIM_STEP_TYPES = ['sim.work', 'demo.echo', 'demo.sleep'] as const;

export interface SimulatorOptions {
  /** REST base, e.g. http://127.0.0.1:3000/api/v1 */
  api: string;
  /** WebSocket URL (default: the API's node, /ws). */
  wsUrl?: string;
  devices: number;
  /** Each step takes a uniformly random time in [min, max] ms (default 20..200). */
  latencyMs?: [number, number];
  /** Probability a step fails with SIM_FAILURE (retryable). */
  failRate?: number;
  /** Probability a step drops its device's socket while it runs (the step finishes anyway). */
  disconnectRate?: number;
  /** A user access token; or email and password; or neither: a throwaway user is registered. */
  token?: string;
  email?: string;
  password?: string;
  /** Submit this many runs per second to random devices (default 0: others submit). */
  runsPerSecond?: number;
  /** Steps per generated run (default 3). */
  steps?: number;
  /** Unbind the registered devices on stop (default false). */
  cleanup?: boolean;
  maxBackoffMs?: number;
  /** Progress lines (registration, connection problems). */
  log?: (line: string) => void;
}

export interface SimulatorStats {
  devices: number;
  connected: number;
  /** step/dispatch frames received (re-dispatches answered from the store included). */
  dispatched: number;
  /** Handler runs that produced a result. */
  completed: number;
  /** Handler runs that produced an error (simulated failures, aborts). */
  failed: number;
  /** Sockets lost while running (simulated drops, server restarts). */
  disconnects: number;
  /** Step keys whose handler ran more than once: must stay 0. */
  duplicateExecutions: number;
  /** Re-dispatches answered from the store without running the handler. */
  replayed: number;
  /** Runs submitted by the load generator. */
  submitted: number;
  /** Frames from the server the device codec refused (protocol drift between server and client): must stay 0. */
  badFrames: number;
}

interface SimDevice {
  id: string;
  token: string;
  client: DeviceClient;
}

export class Simulator {
  private readonly opts: SimulatorOptions;
  readonly api: ApiClient;
  readonly wsUrl: string;
  /** Ids (REST `device.id`) of the registered devices, in order. */
  readonly deviceIds: string[] = [];
  /** The user the devices belong to (registered when no credentials were given). */
  user?: { email?: string; password?: string; throwaway: boolean };
  private readonly devices: SimDevice[] = [];
  /** Handler executions per step key: the side effect that must happen once. */
  private readonly executions = new Map<string, number>();
  private readonly counts = { dispatched: 0, completed: 0, failed: 0, disconnects: 0, replayed: 0, submitted: 0, badFrames: 0 };
  private generator?: NodeJS.Timeout;
  private workflowId?: string;
  private stopping = false;
  private started = false;

  constructor(opts: SimulatorOptions) {
    if (!Number.isInteger(opts.devices) || opts.devices < 1) throw new Error('devices must be a positive integer');
    const [min, max] = opts.latencyMs ?? [20, 200];
    if (!(min >= 0 && max >= min)) throw new Error('latencyMs must be [min, max] with 0 <= min <= max');
    for (const [name, v] of [['failRate', opts.failRate], ['disconnectRate', opts.disconnectRate]] as const) {
      if (v !== undefined && !(v >= 0 && v <= 1)) throw new Error(`${name} must be between 0 and 1`);
    }
    this.opts = opts;
    this.api = new ApiClient({ base: opts.api, token: opts.token, email: opts.email, password: opts.password, client: 'simulator' });
    this.wsUrl = opts.wsUrl ?? this.api.wsUrl;
  }

  /** Signs in, registers the devices and connects them; resolves once all tried to connect. */
  async start(): Promise<void> {
    if (this.started) throw new Error('simulator already started');
    this.started = true;
    const log = this.opts.log ?? (() => undefined);
    if (this.opts.token) {
      this.user = { throwaway: false };
    } else if (this.opts.email && this.opts.password) {
      await this.api.login();
      this.user = { email: this.opts.email, throwaway: false };
    } else {
      const u = await this.api.registerThrowaway('sim');
      this.user = { email: u.email, password: u.password, throwaway: true };
      log(`registered throwaway user ${u.email}`);
    }

    const tag = randomUUID().slice(0, 8);
    const registered: { id: string; token: string }[] = new Array(this.opts.devices);
    await inBatches(this.opts.devices, 8, async (i) => {
      const data = await this.api.post<{ device: { id: string }; device_token: string }>('/users/devices', {
        device_id: `sim-${tag}-${i + 1}`, device_name: `Simulated PC ${i + 1}`, os_type: 'simulated', app_version: 'simulator',
      });
      registered[i] = { id: data.device.id, token: data.device_token };
    });
    for (const r of registered) this.deviceIds.push(r.id);

    await inBatches(registered.length, 16, async (i) => {
      const { id, token } = registered[i];
      const client = new DeviceClient({
        url: this.wsUrl,
        token,
        handlers: this.handlersFor(i),
        maxBackoffMs: this.opts.maxBackoffMs ?? 2000,
        onEvent: (e) => this.onDeviceEvent(e),
      });
      this.devices[i] = { id, token, client };
      await client.start().catch((err: Error) => log(`device ${i + 1} (${id}) could not connect yet: ${err.message}`));
    });

    if ((this.opts.runsPerSecond ?? 0) > 0) await this.startGenerator();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.generator);
    await Promise.all(this.devices.filter(Boolean).map((d) => d.client.stop()));
    if (this.opts.cleanup) {
      await inBatches(this.deviceIds.length, 8, async (i) => {
        await this.api.del(`/users/devices/${this.deviceIds[i]}`).catch(() => undefined);
      });
    }
  }

  stats(): SimulatorStats {
    return {
      devices: this.devices.filter(Boolean).length,
      connected: this.devices.filter((d) => d?.client.connected).length,
      dispatched: this.counts.dispatched,
      completed: this.counts.completed,
      failed: this.counts.failed,
      disconnects: this.counts.disconnects,
      duplicateExecutions: this.duplicates().length,
      replayed: this.counts.replayed,
      submitted: this.counts.submitted,
      badFrames: this.counts.badFrames,
    };
  }

  /** Step keys whose handler ran more than once, with how often. */
  duplicates(): { key: string; executions: number }[] {
    return [...this.executions].filter(([, n]) => n > 1).map(([key, executions]) => ({ key, executions }));
  }

  /** How often a key's handler ran on any simulated device. */
  executionsOf(key: string): number {
    return this.executions.get(key) ?? 0;
  }

  /** Access token of the simulator's user (to submit runs to its devices). */
  get token(): string | undefined {
    return this.api.token;
  }

  private onDeviceEvent(e: DeviceClientEvent): void {
    if (e.type === 'dispatch') {
      this.counts.dispatched++;
      if (e.replayed) this.counts.replayed++;
    } else if (e.type === 'disconnected' && !this.stopping) {
      this.counts.disconnects++;
    } else if (e.type === 'bad-frame') {
      this.counts.badFrames++;
    }
  }

  private handlersFor(index: number): Record<string, StepHandler> {
    const [min, max] = this.opts.latencyMs ?? [20, 200];
    const failRate = this.opts.failRate ?? 0;
    const disconnectRate = this.opts.disconnectRate ?? 0;
    const work: StepHandler = async (params, ctx) => {
      this.executions.set(ctx.key, (this.executions.get(ctx.key) ?? 0) + 1);
      try {
        const latency = min + Math.random() * (max - min);
        const dropAt = Math.random() < disconnectRate ? Math.random() * latency : -1;
        const started = Date.now();
        if (dropAt >= 0) {
          await abortableSleep(dropAt, ctx.signal);
          this.devices[index]?.client.drop(); // the network fails; the step carries on
        }
        await ctx.whilePaused();
        await abortableSleep(Math.max(0, latency - (Date.now() - started)), ctx.signal);
        ctx.progress(100);
        if (Math.random() < failRate) throw new StepFailure('SIM_FAILURE', 'simulated failure', true);
        this.counts.completed++;
        return { simulated: true, latency_ms: Math.round(latency), step: ctx.stepId, params: params ?? null };
      } catch (err) {
        this.counts.failed++;
        throw err;
      }
    };
    const handlers: Record<string, StepHandler> = {
      // A real PNG attached to the step (not simulated: the artifact path is what it exercises).
      'demo.screenshot': async (params, ctx) => {
        this.executions.set(ctx.key, (this.executions.get(ctx.key) ?? 0) + 1);
        this.counts.completed++;
        return demoHandlers['demo.screenshot'](params, ctx);
      },
      'demo.fail': async (params, ctx) => {
        this.executions.set(ctx.key, (this.executions.get(ctx.key) ?? 0) + 1);
        this.counts.failed++;
        return demoHandlers['demo.fail'](params, ctx);
      },
    };
    for (const t of SIM_STEP_TYPES) handlers[t] = work;
    return handlers;
  }

  private async startGenerator(): Promise<void> {
    const steps = Math.max(1, Math.min(this.opts.steps ?? 3, 50));
    const nodes = [
      { id: 'start', type: 'start' },
      ...Array.from({ length: steps }, (_, i) => ({ id: `s${i + 1}`, type: 'sim.work', params: { n: i + 1 } })),
      { id: 'end', type: 'end' },
    ];
    const edges = nodes.slice(1).map((n, i) => ({ from: nodes[i].id, to: n.id }));
    const wf = await this.api.post<{ workflow: { id: string } }>('/workflows', {
      name: `simulator ${new Date().toISOString()}`, definition: { nodes, edges },
    });
    this.workflowId = wf.workflow.id;
    const every = Math.max(10, Math.round(1000 / this.opts.runsPerSecond!));
    this.generator = setInterval(() => {
      const deviceId = this.deviceIds[Math.floor(Math.random() * this.deviceIds.length)];
      this.counts.submitted++;
      this.api.post('/tasks', { workflow_id: this.workflowId, device_id: deviceId }).catch((err: Error) => {
        this.counts.submitted--;
        this.opts.log?.(`submit failed: ${err.message}`);
      });
    }, every);
  }
}

async function inBatches(n: number, size: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(size, n) }, worker));
}
