// The bench's clients: a small REST client, a pool of simulated devices (the reference
// DeviceClient with trivial handlers) and light monitor sockets for the fan-out figure.
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { DeviceClient, abortableSleep, type DeviceClientEvent, type StepHandler } from '../../src/clients/device-client.ts';
import { pool } from './lib.ts';

export interface Reply<T = any> {
  status: number;
  body: { code: number; message: string; data: T };
}

export class Rest {
  readonly base: string;
  token = '';
  constructor(base: string) {
    this.base = `${base}/api/v1`;
  }

  async req<T = any>(method: string, path: string, body?: unknown): Promise<Reply<T>> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${this.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = { message: text };
    }
    return { status: res.status, body: json };
  }

  async ok<T = any>(method: string, path: string, body?: unknown, expect = [200, 201, 202]): Promise<T> {
    const r = await this.req<T>(method, path, body);
    if (!expect.includes(r.status)) throw new Error(`${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.data;
  }
}

/** A linear definition: start -> n steps of `type` -> end. */
export function linear(n: number, type: string, params: Record<string, unknown> = {}) {
  const nodes = [
    { id: 'start', type: 'start' },
    ...Array.from({ length: n }, (_, i) => ({ id: `s${i + 1}`, type, params })),
    { id: 'end', type: 'end' },
  ];
  return { nodes, edges: nodes.slice(1).map((node, i) => ({ from: nodes[i].id, to: node.id })) };
}

// ---- simulated devices ------------------------------------------------------------------------

/** What the simulated PCs do: echo at once, or hold until the step is aborted. */
export const BENCH_HANDLERS: Record<string, StepHandler> = {
  'bench.echo': async (params) => ({ echo: params }),
  // Some work: `ms` give or take half, held while paused, stopped by an abort.
  'bench.work': async (params, ctx) => {
    const ms = Number((params as { ms?: number }).ms ?? 20);
    await ctx.whilePaused();
    await abortableSleep(ms / 2 + Math.random() * ms, ctx.signal);
    await ctx.whilePaused();
    return { worked: true };
  },
  'bench.hold': async (_params, ctx) => {
    await abortableSleep(60 * 60 * 1000, ctx.signal);
    return { held: true };
  },
};

export type StampedEvent = DeviceClientEvent & { t: number };

export class BenchDevice {
  readonly id: string;
  readonly token: string;
  client: DeviceClient | null = null;
  readonly listeners = new Set<(e: StampedEvent) => void>();
  constructor(id: string, token: string) {
    this.id = id;
    this.token = token;
  }

  /** Resolves with the time (performance.now()) of the first event that `test` accepts. */
  next(test: (e: StampedEvent) => boolean, timeoutMs: number, what: string): { promise: Promise<number>; cancel(): void } {
    let cancel = () => undefined as void;
    const promise = new Promise<number>((resolve, reject) => {
      const l = (e: StampedEvent) => {
        if (!test(e)) return;
        done();
        resolve(e.t);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`device ${this.id}: timed out waiting for ${what}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(l);
      };
      cancel = () => {
        done();
        resolve(NaN);
      };
      this.listeners.add(l);
    });
    return { promise, cancel };
  }
}

export async function connectDevices(devices: BenchDevice[], wsUrl: string, parallel = 25): Promise<void> {
  await pool(devices, parallel, async (d) => {
    if (d.client) return;
    const client = new DeviceClient({
      url: wsUrl, token: d.token, handlers: BENCH_HANDLERS, maxBackoffMs: 1000,
      onEvent: (e) => {
        if (d.listeners.size === 0) return;
        const stamped = { ...e, t: performance.now() } as StampedEvent;
        for (const l of [...d.listeners]) l(stamped);
      },
    });
    await client.start();
    d.client = client;
  });
}

export async function disconnectDevices(devices: BenchDevice[]): Promise<void> {
  await Promise.all(devices.map(async (d) => {
    const c = d.client;
    d.client = null;
    await c?.stop();
  }));
}

// ---- bare devices -----------------------------------------------------------------------------

/**
 * The bare baseline's devices (F1, F2): plain ws sockets to the bare server's /device?n=<i>, one
 * per loop like ours' simulated devices, each answering a step at once with its echo.
 */
export async function openBareDevices(bareUrl: string, n: number, parallel = 25): Promise<WebSocket[]> {
  const base = `${bareUrl.replace(/^http/, 'ws')}/device`;
  return pool(Array.from({ length: n }, (_, i) => i), parallel, (i) => new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`${base}?n=${i}`);
    ws.on('error', reject);
    ws.once('open', () => resolve(ws));
    ws.on('message', (data) => {
      const { id, step } = JSON.parse(String(data)) as { id: number; step: number };
      ws.send(JSON.stringify({ id, output: { echo: step } }));
    });
  }));
}

export async function closeBareDevices(sockets: WebSocket[]): Promise<void> {
  await Promise.all(sockets.map((ws) => new Promise<void>((r) => {
    if (ws.readyState === WebSocket.CLOSED) return r();
    ws.once('close', () => r());
    ws.close(1000);
    setTimeout(() => {
      ws.terminate();
      r();
    }, 2000).unref();
  })));
}

// ---- light monitors ---------------------------------------------------------------------------

/**
 * A monitor socket that only counts: opened with a user token on our /ws (or on the bare
 * server), the same code on both sides so the client's own cost is the same.
 */
export class LiteSocket {
  readonly ws: WebSocket;
  onFrame: (text: string, t: number) => void = () => undefined;
  private readonly opened: Promise<void>;

  constructor(url: string, token?: string, waitHello = false) {
    this.ws = new WebSocket(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`ws refused: HTTP ${res.statusCode}`)));
      if (waitHello) this.ws.once('message', () => resolve());
      else this.ws.once('open', () => resolve());
    });
    this.ws.on('message', (data) => this.onFrame(data.toString(), performance.now()));
    this.ws.on('error', () => undefined);
  }

  ready(): Promise<void> {
    return this.opened;
  }

  send(type: string, payload: unknown): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ id: crypto.randomUUID(), type, payload }));
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((r) => {
      this.ws.once('close', () => r());
      if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
      else this.ws.close(1000);
      setTimeout(() => {
        this.ws.terminate();
        r();
      }, 2000).unref();
    });
  }
}

export async function openSockets(n: number, make: () => LiteSocket, parallel = 50): Promise<LiteSocket[]> {
  return pool(Array.from({ length: n }, (_, i) => i), parallel, async () => {
    const s = make();
    await s.ready();
    return s;
  });
}
