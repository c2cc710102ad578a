// Reference device client: what a PC app embeds to run steps for Jarvis. Connects with its
// device token, keeps the heartbeat, reconnects with backoff, runs steps through handlers,
// remembers finished keys (a re-dispatch gets the stored answer, never a second run) and started
// ones (a step the app died in is answered STEP_INTERRUPTED, never run twice), and keeps an
// outbox of answers not yet delivered. All can live on disk (FileKeyStore, FileOutbox), so a
// step finished while the PC was offline is delivered once after a restart too.
import { closeSync, existsSync, fdatasyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import WebSocket from 'ws';
import { demoScreen } from './png.ts';
import {
  MAX_ARTIFACT_BYTES,
  MAX_FRAME_BYTES,
  encodeFrame,
  isFinalClose,
  parseServerToDevice,
  type BadFrame,
  type DeviceStatusPayload,
  type DeviceToServer,
  type ServerToDevice,
  type StepDispatchPayload,
} from '../protocol/index.ts';

export interface StepContext {
  key: string;
  taskId: string;
  stepId: string;
  attempt: number;
  type: string;
  /** Aborted on step/abort (cancel, timeout) and when the client stops. */
  signal: AbortSignal;
  /** Resolves at once unless the step is paused (step/pause), then when it is resumed. */
  whilePaused(): Promise<void>;
  progress(percent?: number, message?: string): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string, details?: unknown): void;
  /**
   * Attaches a file to this step (a screenshot first), before its answer; at most
   * MAX_ARTIFACT_BYTES. False when it cannot go now (not connected, too large).
   */
  attach(name: string, bytes: Uint8Array, kind?: 'screenshot' | 'file'): boolean;
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

/** How many finished keys a store keeps by default (the oldest go first). */
export const DEFAULT_MAX_KEYS = 10_000;

// ---- finished keys ----------------------------------------------------------------------------

/**
 * Where finished keys are kept, and the keys whose step began and has not finished. In memory
 * by default; a PC app keeps them on disk, so that a step it was running when it died is never
 * started again under the same key (it answers STEP_INTERRUPTED instead).
 */
export interface KeyStore {
  get(key: string): StepAnswer | undefined;
  /** Records the answer; the key is no longer "started". */
  set(key: string, answer: StepAnswer): void;
  /** Records, durably, that the step of `key` is about to run. */
  markStarted(key: string): void;
  /** Whether the step of `key` began and never got an answer. */
  wasStarted(key: string): boolean;
}

export class MemoryKeyStore implements KeyStore {
  private readonly map = new Map<string, StepAnswer>();
  private readonly started = new Map<string, true>();
  private readonly max: number;
  constructor(opts: { max?: number } = {}) {
    this.max = opts.max ?? DEFAULT_MAX_KEYS;
  }
  get(key: string) {
    return this.map.get(key);
  }
  set(key: string, answer: StepAnswer) {
    this.started.delete(key);
    this.map.delete(key);
    this.map.set(key, answer);
    evictOldest(this.map, this.max);
  }
  markStarted(key: string) {
    this.started.set(key, true);
    evictOldest(this.started, this.max);
  }
  wasStarted(key: string) {
    return this.started.has(key);
  }
  get size(): number {
    return this.map.size;
  }
}

export interface FileStoreOptions {
  /** Keys kept (default 10,000): the file is rewritten with the newest ones when it grows past twice that. */
  max?: number;
  /** fdatasync after every append (default true): an answer survives a power cut too. */
  fsync?: boolean;
}

/**
 * Finished keys in a JSON-lines file: one `{"key","answer","at"}` line appended per answer, and
 * a `{"key","started":true,"at"}` line (fsync'd) before a step runs, read back at construction. Bounded: the newest `max` keys are kept, and the file is
 * compacted (rewritten, then renamed over) when it holds more than twice that many lines.
 * A torn last line (a crash mid-write) is skipped. One process per file.
 */
export class FileKeyStore implements KeyStore {
  readonly path: string;
  private readonly map = new Map<string, StepAnswer>();
  private readonly started = new Map<string, true>();
  private readonly log: JsonLines;
  private readonly max: number;

  constructor(path: string, opts: FileStoreOptions = {}) {
    this.path = path;
    this.max = opts.max ?? DEFAULT_MAX_KEYS;
    this.log = new JsonLines(path, opts.fsync ?? true);
    for (const rec of this.log.load()) {
      const r = rec as { key?: unknown; answer?: unknown; started?: unknown };
      if (typeof r.key !== 'string') continue;
      if (r.started === true) {
        if (!this.map.has(r.key)) this.started.set(r.key, true);
        continue;
      }
      if (!isAnswer(r.answer)) continue;
      this.started.delete(r.key);
      this.map.delete(r.key);
      this.map.set(r.key, r.answer);
    }
    evictOldest(this.map, this.max);
    evictOldest(this.started, this.max);
    if (this.log.needsRewrite || this.log.lines > this.map.size * 2 + 100) this.compact();
  }

  get(key: string): StepAnswer | undefined {
    return this.map.get(key);
  }

  set(key: string, answer: StepAnswer): void {
    this.started.delete(key);
    this.map.delete(key);
    this.map.set(key, answer);
    evictOldest(this.map, this.max);
    this.log.append({ key, answer, at: Date.now() });
    if (this.log.lines > this.max * 2) this.compact();
  }

  markStarted(key: string): void {
    this.started.set(key, true);
    evictOldest(this.started, this.max);
    this.log.append({ key, started: true, at: Date.now() });
    if (this.log.lines > this.max * 2) this.compact();
  }

  wasStarted(key: string): boolean {
    return this.started.has(key);
  }

  get size(): number {
    return this.map.size;
  }

  /** Closes the file (a later set() opens it again). */
  close(): void {
    this.log.close();
  }

  private compact(): void {
    this.log.rewrite([
      ...[...this.started.keys()].map((key) => ({ key, started: true, at: Date.now() })),
      ...[...this.map].map(([key, answer]) => ({ key, answer, at: Date.now() })),
    ]);
  }
}

// ---- outbox -----------------------------------------------------------------------------------

/** Answers finished while the socket was down, delivered (oldest first) once it is back. */
export interface Outbox {
  add(answer: StepAnswer): void;
  remove(key: string): void;
  list(): StepAnswer[];
  readonly size: number;
}

export class MemoryOutbox implements Outbox {
  private readonly map = new Map<string, StepAnswer>();
  add(answer: StepAnswer) {
    this.map.delete(answer.payload.key);
    this.map.set(answer.payload.key, answer);
    evictOldest(this.map, DEFAULT_MAX_KEYS);
  }
  remove(key: string) {
    this.map.delete(key);
  }
  list() {
    return [...this.map.values()];
  }
  get size() {
    return this.map.size;
  }
}

/**
 * The outbox in a JSON-lines file: `{"op":"add","answer"}` and `{"op":"del","key"}` lines,
 * replayed at construction; rewritten when it is mostly delivered entries.
 */
export class FileOutbox implements Outbox {
  readonly path: string;
  private readonly map = new Map<string, StepAnswer>();
  private readonly log: JsonLines;

  constructor(path: string, opts: Pick<FileStoreOptions, 'fsync'> = {}) {
    this.path = path;
    this.log = new JsonLines(path, opts.fsync ?? true);
    for (const rec of this.log.load()) {
      const r = rec as { op?: unknown; answer?: unknown; key?: unknown };
      if (r.op === 'add' && isAnswer(r.answer)) {
        this.map.delete(r.answer.payload.key);
        this.map.set(r.answer.payload.key, r.answer);
      } else if (r.op === 'del' && typeof r.key === 'string') {
        this.map.delete(r.key);
      }
    }
    evictOldest(this.map, DEFAULT_MAX_KEYS);
    if (this.log.needsRewrite || this.log.lines > this.map.size + 100) this.compact();
  }

  add(answer: StepAnswer): void {
    this.map.delete(answer.payload.key);
    this.map.set(answer.payload.key, answer);
    evictOldest(this.map, DEFAULT_MAX_KEYS);
    this.log.append({ op: 'add', answer });
  }

  remove(key: string): void {
    if (!this.map.delete(key)) return;
    if (this.map.size === 0 && this.log.lines > 100) return this.compact();
    this.log.append({ op: 'del', key });
  }

  list(): StepAnswer[] {
    return [...this.map.values()];
  }

  get size(): number {
    return this.map.size;
  }

  close(): void {
    this.log.close();
  }

  private compact(): void {
    this.log.rewrite([...this.map.values()].map((answer) => ({ op: 'add', answer })));
  }
}

/**
 * A FileKeyStore at `path` and its FileOutbox next to it (`x.jsonl` -> `x.outbox.jsonl`):
 * what a PC app passes as `store` and `outbox`.
 */
export function fileStores(path: string, opts: FileStoreOptions = {}): { store: FileKeyStore; outbox: FileOutbox; close(): void } {
  const store = new FileKeyStore(path, opts);
  const outbox = new FileOutbox(outboxPathFor(path), opts);
  return { store, outbox, close: () => { store.close(); outbox.close(); } };
}

export function outboxPathFor(storePath: string): string {
  return /\.jsonl$/.test(storePath) ? storePath.replace(/\.jsonl$/, '.outbox.jsonl') : `${storePath}.outbox`;
}

/** An append-only JSON-lines file with a rewrite (temp file + rename) for compaction. */
class JsonLines {
  readonly path: string;
  private readonly fsync: boolean;
  private fd: number | null = null;
  /** Lines in the file now. */
  lines = 0;
  /** The file had a torn or bad line: rewrite it before appending after it. */
  needsRewrite = false;

  constructor(path: string, fsync: boolean) {
    this.path = path;
    this.fsync = fsync;
  }

  load(): unknown[] {
    if (!existsSync(this.path)) return [];
    const text = readFileSync(this.path, 'utf8');
    const out: unknown[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      this.lines++;
      try {
        out.push(JSON.parse(line));
      } catch {
        this.needsRewrite = true; // a torn write; the next append must not continue that line
      }
    }
    if (text.length && !text.endsWith('\n')) this.needsRewrite = true;
    return out;
  }

  append(rec: unknown): void {
    if (this.fd === null) {
      mkdirSync(dirname(this.path), { recursive: true });
      this.fd = openSync(this.path, 'a');
    }
    writeSync(this.fd, `${JSON.stringify(rec)}\n`);
    if (this.fsync) fdatasyncSync(this.fd);
    this.lines++;
  }

  rewrite(recs: unknown[]): void {
    this.close();
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, recs.map((r) => `${JSON.stringify(r)}\n`).join(''));
      if (this.fsync) fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    this.lines = recs.length;
    this.needsRewrite = false;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function isAnswer(a: unknown): a is StepAnswer {
  const x = a as StepAnswer | undefined;
  return !!x && (x.type === 'step/result' || x.type === 'step/error') && typeof x.payload?.key === 'string';
}

function evictOldest<V>(map: Map<string, V>, max: number): void {
  for (const k of map.keys()) {
    if (map.size <= max) return;
    map.delete(k);
  }
}

// ---- the client -------------------------------------------------------------------------------

export interface DeviceClientOptions {
  /**
   * The server's WebSocket URL, or a function asked for one before every connection attempt:
   * a device that knows several entry points (API nodes) moves to another when one is cut.
   */
  url: string | (() => string);
  token: string;
  handlers: Record<string, StepHandler>;
  /** Finished keys (default: in memory). */
  store?: KeyStore;
  /** Answers not yet delivered (default: in memory). */
  outbox?: Outbox;
  /** Reconnect after a drop (default true), with exponential backoff up to maxBackoffMs. */
  reconnect?: boolean;
  maxBackoffMs?: number;
  /** First reconnect delay (default 250 ms), doubled on every failed attempt. */
  initialBackoffMs?: number;
  /** Give up an opening handshake after this long (default 10 s). */
  handshakeTimeoutMs?: number;
  onEvent?: (e: DeviceClientEvent) => void;
  /**
   * The device can take screenshots (it lists `screenshot` in its capabilities): a failed step
   * then carries one, taken when it failed.
   */
  screenshot?: () => Promise<Uint8Array>;
  /** What the device says about itself (`device/status`) each time it connects. */
  status?: () => DeviceStatusPayload;
}

export type DeviceClientEvent =
  | { type: 'connected'; connectionId: string }
  | { type: 'disconnected'; code: number; reason: string }
  /** The server refused the upgrade (401: token revoked or rotated, device unbound). */
  | { type: 'refused'; status: number }
  | { type: 'reconnecting'; delayMs: number; attempt: number }
  | { type: 'dispatch'; payload: StepDispatchPayload; replayed: boolean }
  | { type: 'control'; action: 'pause' | 'resume' | 'abort'; key: string }
  /** Sent to the server. */
  | { type: 'answered'; answer: StepAnswer }
  /** Finished while offline: kept in the outbox until the socket is back. */
  | { type: 'queued'; answer: StepAnswer }
  | { type: 'error-frame'; payload: unknown }
  /** A frame from the server this client cannot read (ignored): a newer protocol, or a bug. */
  | { type: 'bad-frame'; error: BadFrame['error'] };

export interface StopOptions {
  /**
   * Let running handlers finish for up to this long (default 0) after the socket is closed;
   * their answers are stored and kept in the outbox for the next start. Handlers still running
   * then are aborted, and a step that ends because of that is not recorded: the server
   * dispatches it again (same key) once the device is back.
   */
  graceMs?: number;
}

interface Running {
  abort: AbortController;
  paused: boolean;
  resumeWaiters: (() => void)[];
  /** Aborted by stop(): the step did not finish, so nothing is recorded for it. */
  stopped: boolean;
  done: Promise<void>;
}

/** Larger frames close the socket (CloseCode.TooBig): an answer leaves room for its envelope. */
const MAX_ANSWER_BYTES = MAX_FRAME_BYTES - 100 * 1024;
const MAX_EXECUTION_KEYS = DEFAULT_MAX_KEYS;

export class DeviceClient {
  private readonly opts: DeviceClientOptions;
  private readonly store: KeyStore;
  private readonly outbox: Outbox;
  private ws?: WebSocket;
  private readonly running = new Map<string, Running>();
  private heartbeat?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private backoff: number;
  private attempts = 0;
  private stopped = false;
  private lastFrameAt = 0;
  /** How many times each key's handler ran (newest 10,000 keys): a side-effect count the tests check. */
  readonly executions = new Map<string, number>();
  /** This connection's id, from hello's `session_id` (a connection, not a login session). */
  connectionId?: string;

  constructor(opts: DeviceClientOptions) {
    this.opts = opts;
    this.store = opts.store ?? new MemoryKeyStore();
    this.outbox = opts.outbox ?? new MemoryOutbox();
    this.backoff = opts.initialBackoffMs ?? 250;
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN && this.connectionId !== undefined;
  }

  /** Keys whose handlers are running now. */
  get runningKeys(): string[] {
    return [...this.running.keys()];
  }

  /** Answers waiting for the socket. */
  get pendingAnswers(): number {
    return this.outbox.size;
  }

  /**
   * Connects; resolves once the server said hello. Rejects when the first attempt fails, and
   * (unless the token was refused or reconnect is off) keeps trying in the background.
   */
  start(): Promise<void> {
    this.stopped = false;
    return new Promise((resolve, reject) => this.connect(resolve, reject));
  }

  /** Closes the socket (no reconnect). Running handlers are aborted, after `graceMs` if given. */
  async stop(opts: StopOptions = {}): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    clearInterval(this.heartbeat);
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((r) => {
        ws.once('close', () => r());
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        else ws.close(1000, 'client stopping');
      });
    }
    if (opts.graceMs && this.running.size) await this.idle(opts.graceMs);
    const left = [...this.running.values()];
    for (const r of left) {
      r.stopped = true;
      r.abort.abort(new StepFailure('ABORTED', 'the device client stopped'));
      r.paused = false;
      r.resumeWaiters.splice(0).forEach((w) => w());
    }
    // Handlers that honour their signal end at once; do not wait long for those that do not.
    if (left.length) await this.idle(1000);
  }

  /** Resolves when no handler is running, or after timeoutMs; true when idle. */
  async idle(timeoutMs = Infinity): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.running.size) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let t: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...this.running.values()].map((r) => r.done)),
        new Promise((r) => { t = setTimeout(r, Math.min(left, 2 ** 31 - 1)); }),
      ]);
      clearTimeout(t);
    }
    return true;
  }

  /**
   * Skips the rest of the backoff and reconnects now (the app learnt the network is back).
   * False when there is no reconnect waiting (connected, connecting, stopped or gave up).
   */
  reconnectNow(): boolean {
    if (this.stopped || this.retryTimer === undefined) return false;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.connect();
    return true;
  }

  /** Drops the connection abruptly (tests: a network failure); reconnects if enabled. */
  drop(): void {
    this.ws?.terminate();
  }

  private connect(onHello?: () => void, onFail?: (err: Error) => void): void {
    const url = typeof this.opts.url === 'function' ? this.opts.url() : this.opts.url;
    const ws = new WebSocket(url, {
      headers: { Authorization: `Bearer ${this.opts.token}` },
      handshakeTimeout: this.opts.handshakeTimeoutMs ?? 10_000,
    });
    this.ws = ws;
    let helloSeen = false;
    let refused = false;
    const fail = (err: Error) => {
      onFail?.(err);
      onFail = undefined;
    };
    ws.on('unexpected-response', (_req, res) => {
      // 401: the token was revoked or rotated, or the device unbound: retrying cannot help.
      refused = res.statusCode === 401 || res.statusCode === 403;
      this.opts.onEvent?.({ type: 'refused', status: res.statusCode ?? 0 });
      fail(new Error(`device connection refused: HTTP ${res.statusCode}`));
      res.resume();
      ws.terminate(); // emits close: reconnect (or not) from there
    });
    ws.on('error', (err) => {
      if (!helloSeen) fail(err);
    });
    ws.on('message', (raw) => {
      this.lastFrameAt = Date.now();
      const parsed = parseServerToDevice(raw.toString());
      if (!parsed.ok) {
        this.opts.onEvent?.({ type: 'bad-frame', error: parsed.error });
        return;
      }
      const msg = parsed.frame;
      if (msg.type === 'hello') {
        helloSeen = true;
        this.backoff = this.opts.initialBackoffMs ?? 250;
        this.attempts = 0;
        this.connectionId = msg.payload.session_id;
        const heartbeatMs = msg.payload.heartbeat_ms;
        const every = Math.max(200, Math.floor(heartbeatMs / 3));
        clearInterval(this.heartbeat);
        this.heartbeat = setInterval(() => {
          // A server that went silent (half-open TCP) answers no ping: drop and reconnect.
          if (Date.now() - this.lastFrameAt > heartbeatMs * 2) ws.terminate();
          else this.send({ type: 'ping', payload: {} });
        }, every);
        this.opts.onEvent?.({ type: 'connected', connectionId: this.connectionId });
        // Busy and readings belong to a connection: the server forgets them when it closes.
        if (this.opts.status) this.sendStatus(this.opts.status());
        this.flushOutbox();
        onHello?.();
        onHello = undefined;
        return;
      }
      this.onMessage(msg);
    });
    ws.on('close', (code, reason) => {
      if (this.ws === ws) {
        clearInterval(this.heartbeat);
        this.connectionId = undefined;
      }
      this.opts.onEvent?.({ type: 'disconnected', code, reason: reason.toString() });
      if (this.ws !== ws) return; // an older socket
      // Refused (401/403) or closed for good (token invalid, forbidden, replaced): stay down.
      if (this.stopped || refused || this.opts.reconnect === false || isFinalClose(code)) return;
      const delay = Math.round(this.backoff * (0.5 + Math.random() / 2));
      this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 10_000);
      this.attempts++;
      this.opts.onEvent?.({ type: 'reconnecting', delayMs: delay, attempt: this.attempts });
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        if (!this.stopped) this.connect();
      }, delay);
    });
  }

  /** Tells the server about this machine (busy, versions, readings); false when not connected. */
  sendStatus(status: DeviceStatusPayload): boolean {
    return this.connected && this.send({ type: 'device/status', payload: status });
  }

  private send(msg: DeviceToServer): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(encodeFrame(msg));
    return true;
  }

  private deliver(answer: StepAnswer): void {
    if (this.connected && this.send(answer)) {
      this.outbox.remove(answer.payload.key);
      this.opts.onEvent?.({ type: 'answered', answer });
      return;
    }
    this.outbox.add(answer);
    this.opts.onEvent?.({ type: 'queued', answer });
  }

  private flushOutbox(): void {
    for (const a of this.outbox.list()) {
      if (!this.send(a)) return;
      this.outbox.remove(a.payload.key);
      this.opts.onEvent?.({ type: 'answered', answer: a });
    }
  }

  private onMessage(msg: Exclude<ServerToDevice, { type: 'hello' }>): void {
    switch (msg.type) {
      case 'step/dispatch':
        void this.runStep(msg.payload);
        return;
      case 'step/pause':
      case 'step/resume':
      case 'step/abort': {
        const { key, reason } = msg.payload;
        const action = msg.type === 'step/pause' ? 'pause' : msg.type === 'step/resume' ? 'resume' : 'abort';
        this.opts.onEvent?.({ type: 'control', action, key });
        const r = this.running.get(key);
        if (!r) return;
        if (action === 'abort') r.abort.abort(new StepFailure('ABORTED', reason ?? 'aborted'));
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
      case 'pong':
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
    if (this.running.has(d.key)) {
      // Sent again after a reconnect while the handler still runs: its answer will come.
      this.send({ type: 'step/accept', payload: { key: d.key } });
      return;
    }
    if (this.store.wasStarted(d.key)) {
      // Begun before and never finished: the app died (or was stopped) in the middle of it, and
      // whether it took effect is unknown. Never run a key twice: the workflow's retry policy
      // decides whether to run the step again, under a new key.
      this.opts.onEvent?.({ type: 'dispatch', payload: d, replayed: true });
      const answer = errorAnswer(d.key, new StepFailure('STEP_INTERRUPTED',
        'the device stopped during this step; it may or may not have taken effect', true));
      this.store.set(d.key, answer);
      this.deliver(answer);
      return;
    }
    this.store.markStarted(d.key);
    this.opts.onEvent?.({ type: 'dispatch', payload: d, replayed: false });
    this.send({ type: 'step/accept', payload: { key: d.key } });
    let finished!: () => void;
    const r: Running = {
      abort: new AbortController(), paused: false, resumeWaiters: [], stopped: false,
      done: new Promise<void>((res) => { finished = res; }),
    };
    this.running.set(d.key, r);
    const ctx: StepContext = {
      key: d.key,
      taskId: d.task_id,
      stepId: d.step_id,
      attempt: d.attempt,
      type: d.type,
      signal: r.abort.signal,
      whilePaused: () => (r.paused ? new Promise<void>((res) => r.resumeWaiters.push(res)) : Promise.resolve()),
      progress: (percent, message) => {
        const p = typeof percent === 'number' && Number.isFinite(percent) ? Math.min(100, Math.max(0, percent)) : undefined;
        this.send({ type: 'step/progress', payload: { key: d.key, percent: p, message: message === undefined ? undefined : String(message).slice(0, 2000) } });
      },
      log: (level, message, details) =>
        this.send({ type: 'log', payload: { task_id: d.task_id, key: d.key, level, message: String(message).slice(0, 10_000), details: jsonOrUndefined(details) } }),
      attach: (name, bytes, kind = 'file') => {
        if (bytes.length > MAX_ARTIFACT_BYTES) return false;
        return this.send({ type: 'step/artifact', payload: { key: d.key, kind, name: String(name).slice(0, 255) || 'artifact', data: Buffer.from(bytes).toString('base64') } });
      },
    };
    let answer: StepAnswer | null = null;
    // Own or inherited handlers, but never Object.prototype's ("constructor", "toString").
    const candidate = Object.hasOwn(Object.prototype, d.type) ? undefined : this.opts.handlers[d.type];
    const handler = typeof candidate === 'function' ? candidate : undefined;
    try {
      if (!handler) throw new StepFailure('UNSUPPORTED_STEP', `this device has no handler for "${d.type}"`);
      const count = (this.executions.get(d.key) ?? 0) + 1;
      this.executions.delete(d.key);
      this.executions.set(d.key, count);
      evictOldest(this.executions, MAX_EXECUTION_KEYS);
      const output = await handler(d.params, ctx);
      // Aborted by the server (cancel, timeout): it moved on, the answer is ABORTED. A handler
      // that finished although stop() aborted it did its work: its result is recorded.
      if (r.abort.signal.aborted && !r.stopped) throw r.abort.signal.reason;
      answer = resultAnswer(d.key, output);
    } catch (err) {
      // A step cut short by stop() did not finish: no answer now; its key stays "started", so a
      // re-dispatch is answered STEP_INTERRUPTED rather than run again.
      if (!r.stopped) {
        answer = errorAnswer(d.key, err);
        // What the screen showed when it failed, sent ahead of the error (the server ties it to the step).
        if (this.opts.screenshot && !r.abort.signal.aborted) {
          await this.opts.screenshot().then((png) => ctx.attach(`failure-${d.step_id}.png`, png, 'screenshot'), () => false);
        }
      }
    } finally {
      this.running.delete(d.key);
    }
    if (answer) {
      this.store.set(d.key, answer);
      this.deliver(answer);
    }
    finished();
  }
}

function resultAnswer(key: string, output: unknown): StepAnswer {
  let text: string | undefined;
  try {
    text = JSON.stringify(output ?? null);
  } catch (err) {
    return errorAnswer(key, new StepFailure('OUTPUT_NOT_JSON', `the step's output is not JSON: ${(err as Error).message}`));
  }
  if (text === undefined) return { type: 'step/result', payload: { key, output: null } };
  if (Buffer.byteLength(text) > MAX_ANSWER_BYTES) {
    return errorAnswer(key, new StepFailure('OUTPUT_TOO_LARGE', `the step's output is ${Buffer.byteLength(text)} bytes; the limit is ${MAX_ANSWER_BYTES}`));
  }
  return { type: 'step/result', payload: { key, output: JSON.parse(text) } };
}

function errorAnswer(key: string, err: unknown): StepAnswer {
  const f = err instanceof StepFailure ? err : new StepFailure('STEP_FAILED', (err as Error)?.message ?? String(err));
  const code = (f.code || 'STEP_FAILED').slice(0, 100);
  const message = String(f.message ?? '').slice(0, 10_000);
  return { type: 'step/error', payload: { key, error: { code, message, retryable: f.retryable === true } } };
}

function jsonOrUndefined(v: unknown): unknown {
  if (v === undefined) return undefined;
  try {
    const text = JSON.stringify(v);
    return text === undefined || text.length > 64 * 1024 ? undefined : JSON.parse(text);
  } catch {
    return undefined;
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
  /** A real PNG of a made-up screen, attached to the step; params `{width?, height?}` (16-1920). */
  'demo.screenshot': async (params, ctx) => {
    const p = (params ?? {}) as { width?: number; height?: number };
    const size = (v: unknown, d: number) => Math.max(16, Math.min(1920, Math.floor(Number(v ?? d)) || d));
    const width = size(p.width, 640);
    const height = size(p.height, 400);
    const png = demoScreen(width, height, ctx.attempt * 37 + ctx.stepId.length);
    if (!ctx.attach(`screen-${ctx.stepId}.png`, png, 'screenshot')) throw new StepFailure('ARTIFACT_NOT_SENT', `the screenshot (${png.length} bytes) could not be sent`, true);
    return { width, height, bytes: png.length };
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
