// Reference device client: what a PC app embeds to run steps for Jarvis. Connects with its
// device token, keeps the heartbeat, reconnects with backoff, runs steps through handlers,
// remembers finished keys (a re-dispatch gets the stored answer, never a second run) and keeps
// an outbox of answers not yet delivered.
import WebSocket from 'ws';
import type { StepDispatchPayload } from '../ws/protocol.ts';

export interface StepContext {
  key: string;
  taskId: string;
  stepId: string;
  attempt: number;
  type: string;
  /** Aborted on step/abort (cancel, timeout). */
  signal: AbortSignal;
  /** Resolves at once unless the step is paused (step/pause), then when it is resumed. */
  whilePaused(): Promise<void>;
  progress(percent?: number, message?: string): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string, details?: unknown): void;
}

/** A step handler returns the step's output or throws (StepFailure for a coded error). */
export type StepHandler = (params: unknown, ctx: StepContext) => Promise<unknown>;

export class StepFailure extends Error {
  readonly code: string;
  readonly retryable: boolean;
  constructor(code: string, message: string, retryable = false) {
    super(message);
    this.code = code;
    this.retryable = retryable;
  }
}

export type StepAnswer =
  | { type: 'step/result'; payload: { key: string; output: unknown } }
  | { type: 'step/error'; payload: { key: string; error: { code: string; message: string; retryable?: boolean } } };

/** Where finished keys are kept. In memory by default; a PC app keeps them on disk. */
export interface KeyStore {
  get(key: string): StepAnswer | undefined;
  set(key: string, answer: StepAnswer): void;
}

export class MemoryKeyStore implements KeyStore {
  private readonly map = new Map<string, StepAnswer>();
  get(key: string) {
    return this.map.get(key);
  }
  set(key: string, answer: StepAnswer) {
    this.map.set(key, answer);
  }
}

export interface DeviceClientOptions {
  url: string;
  token: string;
  handlers: Record<string, StepHandler>;
  store?: KeyStore;
  /** Reconnect after a drop (default true), with exponential backoff up to maxBackoffMs. */
  reconnect?: boolean;
  maxBackoffMs?: number;
  onEvent?: (e: DeviceClientEvent) => void;
}

export type DeviceClientEvent =
  | { type: 'connected'; sessionId: string }
  | { type: 'disconnected'; code: number; reason: string }
  | { type: 'dispatch'; payload: StepDispatchPayload; replayed: boolean }
  | { type: 'control'; action: 'pause' | 'resume' | 'abort'; key: string }
  | { type: 'answered'; answer: StepAnswer }
  | { type: 'error-frame'; payload: unknown };

interface Running {
  abort: AbortController;
  paused: boolean;
  resumeWaiters: (() => void)[];
}

export class DeviceClient {
  private readonly opts: DeviceClientOptions;
  private readonly store: KeyStore;
  private ws?: WebSocket;
  private readonly running = new Map<string, Running>();
  private readonly outbox: StepAnswer[] = [];
  private heartbeat?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private backoff = 250;
  private stopped = false;
  /** How many times each key's handler ran: a side-effect count the tests check. */
  readonly executions = new Map<string, number>();
  sessionId?: string;

  constructor(opts: DeviceClientOptions) {
    this.opts = opts;
    this.store = opts.store ?? new MemoryKeyStore();
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN && this.sessionId !== undefined;
  }

  /** Connects; resolves once the server said hello. */
  start(): Promise<void> {
    this.stopped = false;
    return new Promise((resolve, reject) => this.connect(resolve, reject));
  }

  /** Closes the socket (no reconnect). Running handlers are aborted. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
    for (const r of this.running.values()) r.abort.abort();
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((r) => {
        ws.once('close', () => r());
        ws.close(1000, 'client stopping');
      });
    }
  }

  /** Drops the connection abruptly (tests: a network failure); reconnects if enabled. */
  drop(): void {
    this.ws?.terminate();
  }

  private connect(onHello?: () => void, onFail?: (err: Error) => void): void {
    const ws = new WebSocket(this.opts.url, { headers: { Authorization: `Bearer ${this.opts.token}` } });
    this.ws = ws;
    let helloSeen = false;
    ws.on('unexpected-response', (_req, res) => {
      const err = new Error(`device connection refused: HTTP ${res.statusCode}`);
      this.stopped = this.stopped || res.statusCode === 401;
      onFail?.(err);
      onFail = undefined;
    });
    ws.on('error', (err) => {
      if (!helloSeen) {
        onFail?.(err);
        onFail = undefined;
      }
    });
    ws.on('message', (raw) => {
      let msg: { type: string; payload: Record<string, unknown> };
      try {
        msg = JSON.parse(raw.toString());
      } catch {
        return;
      }
      if (msg.type === 'hello') {
        helloSeen = true;
        this.backoff = 250;
        this.sessionId = String(msg.payload.session_id);
        const every = Math.max(200, Math.floor(Number(msg.payload.heartbeat_ms) / 3));
        clearInterval(this.heartbeat);
        this.heartbeat = setInterval(() => this.send('ping', {}), every);
        this.flushOutbox();
        this.opts.onEvent?.({ type: 'connected', sessionId: this.sessionId });
        onHello?.();
        onHello = undefined;
        return;
      }
      this.onMessage(msg);
    });
    ws.on('close', (code, reason) => {
      clearInterval(this.heartbeat);
      this.sessionId = undefined;
      this.opts.onEvent?.({ type: 'disconnected', code, reason: reason.toString() });
      // 4401: token revoked; 4409: replaced by a newer session of this device: stay down.
      if (this.stopped || this.opts.reconnect === false || code === 4401 || code === 4409) return;
      const delay = this.backoff;
      this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 10_000);
      this.retryTimer = setTimeout(() => this.connect(), delay * (0.5 + Math.random() / 2));
    });
  }

  private send(type: string, payload: unknown): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify({ id: crypto.randomUUID(), type, ts: Date.now(), payload }));
    return true;
  }

  private deliver(answer: StepAnswer): void {
    if (!this.connected || !this.send(answer.type, answer.payload)) {
      this.outbox.push(answer);
      return;
    }
    this.opts.onEvent?.({ type: 'answered', answer });
  }

  private flushOutbox(): void {
    const pending = this.outbox.splice(0);
    for (const a of pending) this.deliver(a);
  }

  private onMessage(msg: { type: string; payload: Record<string, unknown> }): void {
    switch (msg.type) {
      case 'step/dispatch':
        void this.runStep(msg.payload as unknown as StepDispatchPayload);
        return;
      case 'step/pause':
      case 'step/resume':
      case 'step/abort': {
        const key = String(msg.payload.key);
        const action = msg.type.slice(5) as 'pause' | 'resume' | 'abort';
        this.opts.onEvent?.({ type: 'control', action, key });
        const r = this.running.get(key);
        if (!r) return;
        if (action === 'abort') r.abort.abort(new StepFailure('ABORTED', String(msg.payload.reason ?? 'aborted')));
        if (action === 'pause') r.paused = true;
        if (action === 'resume' || action === 'abort') {
          r.paused = false;
          r.resumeWaiters.splice(0).forEach((w) => w());
        }
        return;
      }
      case 'error':
        this.opts.onEvent?.({ type: 'error-frame', payload: msg.payload });
        return;
      default:
        return;
    }
  }

  private async runStep(d: StepDispatchPayload): Promise<void> {
    const stored = this.store.get(d.key);
    if (stored) {
      // Finished before (the server lost our answer): answer again, do not run again.
      this.opts.onEvent?.({ type: 'dispatch', payload: d, replayed: true });
      this.deliver(stored);
      return;
    }
    if (this.running.has(d.key)) return; // already running: its answer will come
    this.opts.onEvent?.({ type: 'dispatch', payload: d, replayed: false });
    this.send('step/accept', { key: d.key });
    const r: Running = { abort: new AbortController(), paused: false, resumeWaiters: [] };
    this.running.set(d.key, r);
    const ctx: StepContext = {
      key: d.key,
      taskId: d.task_id,
      stepId: d.step_id,
      attempt: d.attempt,
      type: d.type,
      signal: r.abort.signal,
      whilePaused: () => (r.paused ? new Promise<void>((res) => r.resumeWaiters.push(res)) : Promise.resolve()),
      progress: (percent, message) => this.send('step/progress', { key: d.key, percent, message }),
      log: (level, message, details) => this.send('log', { task_id: d.task_id, key: d.key, level, message, details }),
    };
    let answer: StepAnswer;
    const handler = this.opts.handlers[d.type];
    try {
      if (!handler) throw new StepFailure('UNSUPPORTED_STEP', `this device has no handler for "${d.type}"`);
      this.executions.set(d.key, (this.executions.get(d.key) ?? 0) + 1);
      const output = await handler(d.params, ctx);
      if (r.abort.signal.aborted) throw r.abort.signal.reason;
      answer = { type: 'step/result', payload: { key: d.key, output: output ?? null } };
    } catch (err) {
      const f = err instanceof StepFailure ? err : new StepFailure('STEP_FAILED', (err as Error)?.message ?? String(err));
      answer = { type: 'step/error', payload: { key: d.key, error: { code: f.code, message: f.message, retryable: f.retryable } } };
    } finally {
      this.running.delete(d.key);
    }
    this.store.set(d.key, answer);
    this.deliver(answer);
  }
}

/** Built-in demo handlers: echo, sleep with progress, fail with a code. */
export const demoHandlers: Record<string, StepHandler> = {
  'demo.echo': async (params) => ({ echo: params }),
  'demo.sleep': async (params, ctx) => {
    const ms = Math.max(0, Math.min(Number((params as { ms?: number })?.ms ?? 1000), 3_600_000));
    const ticks = 10;
    for (let i = 1; i <= ticks; i++) {
      await ctx.whilePaused();
      await abortableSleep(ms / ticks, ctx.signal);
      ctx.progress((i / ticks) * 100, `slept ${Math.round((ms * i) / ticks)} ms`);
    }
    return { slept_ms: ms };
  },
  'demo.fail': async (params) => {
    const p = (params ?? {}) as { code?: string; message?: string; retryable?: boolean };
    throw new StepFailure(p.code ?? 'DEMO_FAILURE', p.message ?? 'demo.fail failed as asked', p.retryable ?? false);
  },
};

export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
