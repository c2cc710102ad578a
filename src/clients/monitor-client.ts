// Reference monitor client: watches runs over /ws with a user access token and resumes each
// subscription after a drop with `after_seq`, so it sees every durable event exactly once.
import WebSocket from 'ws';
import {
  encodeFrame,
  newFrameId,
  parseServerToMonitor,
  type BadFrame,
  type MonitorToServer,
  type ServerToMonitor,
  type TaskEventPayload,
} from '../protocol/index.ts';

/** A frame as received: parsed against the server -> monitor union, with the `re` it answers. */
export type ReceivedFrame = ServerToMonitor & { re?: string };

export interface MonitorClientOptions {
  url: string;
  token: string;
  reconnect?: boolean;
  onEvent?: (ev: TaskEventPayload) => void;
  onFrame?: (frame: ReceivedFrame) => void;
  /** A frame this client cannot read (ignored): a newer protocol, or a server bug. */
  onBadFrame?: (error: BadFrame['error']) => void;
}

export class MonitorClient {
  private readonly opts: MonitorClientOptions;
  private ws?: WebSocket;
  private heartbeat?: NodeJS.Timeout;
  private stopped = false;
  /** The server refused the token: no reconnecting. */
  private refused = false;
  /** Last durable seq seen per subscribed task. */
  readonly cursors = new Map<string, number>();
  readonly events: TaskEventPayload[] = [];
  readonly frames: ReceivedFrame[] = [];
  private readonly waiters: { test: () => boolean; resolve: () => void }[] = [];

  constructor(opts: MonitorClientOptions) {
    this.opts = opts;
  }

  private retryTimer?: NodeJS.Timeout;

  start(): Promise<void> {
    this.stopped = false;
    this.refused = false;
    return this.connect();
  }

  private connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.opts.url, { headers: { Authorization: `Bearer ${this.opts.token}` } });
      this.ws = ws;
      ws.on('unexpected-response', (_req, res) => {
        // A refused upgrade (503 while PostgreSQL is down) must end in 'close' like any failed
        // connection, or the client would never try again; ws leaves that to this listener.
        if (res.statusCode === 401 || res.statusCode === 403) this.refused = true; // retrying cannot help
        reject(new Error(`monitor connection refused: HTTP ${res.statusCode}`));
        res.resume();
        ws.terminate();
      });
      ws.on('error', reject);
      ws.on('message', (raw) => {
        const parsed = parseServerToMonitor(raw.toString());
        if (!parsed.ok) {
          this.opts.onBadFrame?.(parsed.error);
          return;
        }
        const msg: ReceivedFrame = parsed.envelope.re ? { ...parsed.frame, re: parsed.envelope.re } : parsed.frame;
        this.frames.push(msg);
        this.opts.onFrame?.(msg);
        if (msg.type === 'hello') {
          const every = Math.max(200, Math.floor(msg.payload.heartbeat_ms / 3));
          this.heartbeat = setInterval(() => this.send({ type: 'ping', payload: {} }), every);
          // Resume every subscription where it left off.
          for (const [taskId, seq] of this.cursors) this.send({ type: 'subscribe', payload: { task_id: taskId, after_seq: seq } });
          resolve();
        } else if (msg.type === 'task/event') {
          const ev = msg.payload;
          if (ev.seq !== undefined) {
            const last = this.cursors.get(ev.task_id) ?? 0;
            if (ev.seq <= last) return; // never hand a durable event out twice
            this.cursors.set(ev.task_id, ev.seq);
          }
          this.events.push(ev);
          this.opts.onEvent?.(ev);
        }
        this.check();
      });
      ws.on('close', () => {
        clearInterval(this.heartbeat);
        this.check();
        if (!this.stopped && !this.refused && this.opts.reconnect) {
          this.retryTimer = setTimeout(() => this.connect().catch(() => undefined), 200);
        }
      });
    });
  }

  /** Sends a frame if the socket is open; returns its id (the `re` of the answer). */
  send(msg: MonitorToServer): string {
    const id = newFrameId();
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(encodeFrame(msg, undefined, id));
    return id;
  }

  subscribe(taskId: string, afterSeq = 0): string {
    if (!this.cursors.has(taskId)) this.cursors.set(taskId, afterSeq);
    return this.send({ type: 'subscribe', payload: { task_id: taskId, after_seq: afterSeq } });
  }

  /** The frames of one type received so far. */
  framesOf<T extends ReceivedFrame['type']>(type: T): Extract<ReceivedFrame, { type: T }>[] {
    return this.frames.filter((f): f is Extract<ReceivedFrame, { type: T }> => f.type === type);
  }

  /** Resolves when `test` holds (checked on every frame), or rejects after timeoutMs. */
  waitFor(test: () => boolean, timeoutMs = 30_000, what = 'condition'): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { test, resolve: () => { clearTimeout(t); resolve(); } };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timed out waiting for ${what}; events: ${this.events.map((e) => e.kind).join(', ')}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  eventsOf(taskId: string): TaskEventPayload[] {
    return this.events.filter((e) => e.task_id === taskId);
  }

  drop(): void {
    this.ws?.terminate();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((r) => {
        ws.once('close', () => r());
        ws.close(1000);
      });
    }
  }

  private check(): void {
    for (const w of [...this.waiters]) {
      if (w.test()) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }
}
