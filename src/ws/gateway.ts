// The WebSocket gateway at /ws: authenticates the upgrade, then runs a device session or a
// monitor session over the protocol in protocol.ts.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Client } from '@temporalio/client';
import type { Config } from '../config.ts';
import type { Orm } from '../db/orm.ts';
import { Sessions, type SessionCache } from '../domain/sessions.ts';
import type { Logger } from '../logger.ts';
import { deviceForToken, markOffline, markOnline, touchPresence } from '../domain/devices.ts';
import { recordDeviceLog } from '../domain/logs.ts';
import { signalDeviceOnline } from '../domain/tasks.ts';
import { looksLikeJwt, type AccessTokens } from '../domain/tokens.ts';
import { DeviceSession, isNewerSession, type DeviceSessions } from './device-sessions.ts';
import type { HistoryStreams } from './history-stream.ts';
import type { PgBus } from './pg-bus.ts';
import type { UserFeeds } from './user-feed.ts';
import {
  CloseCode,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  WsErrorCode,
  deviceMessageSchema,
  frame,
  monitorMessageSchema,
  parseFrame,
  sharedFrame,
  type DeviceMessage,
  type MonitorMessage,
  type ServerMessage,
} from './protocol.ts';

type Identity =
  | { role: 'device'; deviceId: string; userId: string }
  | { role: 'monitor'; userId: string; sessionId: string; exp: number };

export interface GatewayDeps {
  config: Config;
  logger: Logger;
  orm: Orm;
  temporal: Client;
  tokens: AccessTokens;
  sessions: DeviceSessions;
  live: PgBus;
  streams: HistoryStreams;
  feeds: UserFeeds;
  /** Shared with the REST app: open sessions trusted for a moment. */
  sessionCache?: SessionCache;
}

interface Conn {
  ws: WebSocket;
  sessionId: string;
  lastSeen: number;
}

export class Gateway {
  private readonly deps: GatewayDeps;
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<Conn>();
  private sweeper?: NodeJS.Timeout;
  private monitorCount = 0;
  private readonly monitorsBySession = new Map<string, Set<WebSocket>>();
  /** This node's monitors by user: a live event goes to its user's monitors only. */
  private readonly monitorsByUser = new Map<string, Set<MonitorState>>();
  private readonly tasks: TaskLookups;
  private readonly unlisten: (() => void)[] = [];
  /** Slow monitors: live-only frames dropped, monitors closed with 1013 (tests and logs read it). */
  readonly backpressure = { liveDropped: 0, overloadClosed: 0 };
  /** Set by close(): the node marks all its devices offline itself. */
  private closing = false;

  private readonly sessions: Sessions;

  constructor(deps: GatewayDeps) {
    this.deps = deps;
    this.sessions = new Sessions(deps.tokens, deps.config.REFRESH_TOKEN_TTL_S, deps.sessionCache);
    this.tasks = new TaskLookups(deps.orm);
    // ws closes a connection with 1009 when a frame is larger than maxPayload.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, clientTracking: false });
  }

  get counts() {
    return { devices: this.deps.sessions.size, monitors: this.monitorCount };
  }

  attach(server: Server): void {
    server.on('upgrade', (req, socket, head) => {
      this.upgrade(req, socket, head).catch((err) => {
        this.deps.logger.error({ err }, 'websocket upgrade failed');
        refuse(socket, 500, 'Internal Server Error');
      });
    });
    const hb = this.deps.config.WS_HEARTBEAT_MS;
    this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.floor(hb / 4)));
    this.sweeper.unref();
    // One live session per device across all nodes: a newer one elsewhere replaces ours. An
    // announcement can land after a newer session opened here, so only a newer one closes ours.
    this.unlisten.push(this.deps.live.onDeviceConnected((d) => {
      const s = this.deps.sessions.get(d.deviceId);
      if (s && s.sessionId !== d.sessionId && isNewerSession(d, s)) {
        s.dropAll('replaced by a newer session');
        s.socket.close(CloseCode.Replaced, 'replaced by a newer session');
      }
    }));
    // A session revoked on any node (logout, refresh token reuse): its monitors here go too.
    this.unlisten.push(this.deps.live.onSessionRevoked((sid) => this.closeSession(sid, CloseCode.TokenInvalid, 'session revoked')));
    this.unlisten.push(this.deps.live.subscribe((e) => {
      for (const m of this.monitorsByUser.get(e.userId) ?? []) {
        if (m.subs.has(e.event.task_id) || m.userFeed) this.deliver(m.ws, { type: 'task/event', payload: e.event }, false);
      }
    }));
  }

  /** Closes a device's live session (unbound, token rotated). */
  closeDevice(deviceId: string, code: number, reason: string): void {
    this.deps.sessions.get(deviceId)?.socket.close(code, reason);
  }

  closeSession(sessionId: string, code: number, reason: string): void {
    for (const ws of this.monitorsBySession.get(sessionId) ?? []) ws.close(code, reason);
  }

  /** Closes every socket with "going away": clients reconnect (to another node). */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    for (const off of this.unlisten.splice(0)) off();
    for (const c of this.conns) c.ws.close(CloseCode.GoingAway, 'server shutting down; reconnect');
    const deadline = Date.now() + 2000;
    while (this.conns.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.conns) c.ws.terminate();
  }

  private sweep(): void {
    const limit = this.deps.config.WS_HEARTBEAT_MS * 1.5;
    const now = Date.now();
    for (const c of this.conns) {
      if (now - c.lastSeen > limit) c.ws.close(CloseCode.HeartbeatMissed, 'heartbeat missed');
    }
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/ws') return refuse(socket, 404, 'Not Found');
    const header = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const token = (header ?? url.searchParams.get('token') ?? '').trim();
    const identity = token ? await this.identify(token) : null;
    if (!identity) return refuse(socket, 401, 'Unauthorized');
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (identity.role === 'device') this.runDevice(ws, identity);
      else this.runMonitor(ws, identity);
    });
  }

  private async identify(token: string): Promise<Identity | null> {
    const em = this.deps.orm.em.fork();
    if (token.startsWith('dev_')) {
      const device = await deviceForToken(em, token);
      return device ? { role: 'device', deviceId: device.id, userId: device.userId } : null;
    }
    if (!looksLikeJwt(token)) return null;
    try {
      const { userId, sessionId, exp } = await this.deps.tokens.verify(token);
      return (await this.sessions.isOpen(em, userId, sessionId)) ? { role: 'monitor', userId, sessionId, exp } : null;
    } catch {
      return null;
    }
  }

  private open(ws: WebSocket, role: 'device' | 'monitor'): Conn {
    const conn: Conn = { ws, sessionId: crypto.randomUUID(), lastSeen: Date.now() };
    this.conns.add(conn);
    ws.on('close', () => this.conns.delete(conn));
    ws.on('error', (err) => this.deps.logger.debug({ err }, 'websocket error'));
    send(ws, {
      type: 'hello',
      payload: { role, session_id: conn.sessionId, heartbeat_ms: this.deps.config.WS_HEARTBEAT_MS, protocol: PROTOCOL_VERSION },
    });
    return conn;
  }

  // ---- devices -------------------------------------------------------------------------------

  private runDevice(ws: WebSocket, id: { deviceId: string; userId: string }): void {
    const { sessions, orm, logger, config, temporal } = this.deps;
    const startedAt = new Date();
    const conn = this.open(ws, 'device');
    const session = new DeviceSession(id.deviceId, id.userId, conn.sessionId, ws, startedAt.getTime());
    const replaced = sessions.add(session);
    if (replaced) {
      replaced.dropAll('replaced by a newer session');
      replaced.socket.close(CloseCode.Replaced, 'replaced by a newer session');
    }
    const log = logger.child({ deviceId: id.deviceId, session: conn.sessionId });
    let lastTouch = Date.now();
    // Presence first, then wake the runs waiting for this device.
    const ready = (async () => {
      await this.deps.live.announceDevice({ deviceId: id.deviceId, sessionId: conn.sessionId, startedAt: startedAt.getTime() });
      if (!(await markOnline(orm.em.fork(), id.deviceId, config.NODE_ID, conn.sessionId, startedAt))) {
        // A newer session of this device exists elsewhere: this one is already replaced.
        ws.close(CloseCode.Replaced, 'replaced by a newer session');
        return;
      }
      await signalDeviceOnline(orm.em.fork(), temporal, id.deviceId, config.NODE_ID);
    })().catch((err) => log.error({ err }, 'could not record device presence'));

    ws.on('message', (data, isBinary) => {
      conn.lastSeen = Date.now();
      const parsed = decode(ws, data, isBinary, deviceMessageSchema);
      if (!parsed) return;
      const { envelope, message } = parsed;
      this.onDeviceMessage(session, message, envelope.id);
      if (message.type === 'ping' && Date.now() - lastTouch > config.WS_HEARTBEAT_MS / 2) {
        lastTouch = Date.now();
        touchPresence(orm.em.fork(), id.deviceId, conn.sessionId).catch((err) => log.warn({ err }, 'presence update failed'));
      }
    });
    ws.on('close', (code) => {
      session.dropAll('device disconnected');
      if (sessions.remove(session) && !this.closing) {
        void ready.then(() => markOffline(orm.em.fork(), id.deviceId, conn.sessionId)).catch((err) =>
          log.error({ err }, 'could not record device offline'));
      }
      log.debug({ code }, 'device disconnected');
    });
  }

  private onDeviceMessage(session: DeviceSession, msg: DeviceMessage, re: string): void {
    const { sessions, live } = this.deps;
    switch (msg.type) {
      case 'ping':
        session.send({ type: 'pong', payload: {} }, re);
        return;
      case 'step/accept':
        if (!session.accept(msg.payload.key)) unknownKey(session, re, msg.payload.key);
        return;
      case 'step/progress':
        if (!session.progress(msg.payload.key, { percent: msg.payload.percent, message: msg.payload.message })) {
          unknownKey(session, re, msg.payload.key);
        }
        return;
      case 'step/result':
      case 'step/error': {
        const outcome = msg.type === 'step/result'
          ? { ok: true as const, output: msg.payload.output ?? null }
          : { ok: false as const, error: msg.payload.error };
        const key = msg.payload.key;
        if (session.settle(key, outcome)) return;
        // Its dispatch is gone (socket replaced, activity retried): keep it for the re-dispatch.
        if (!sessions.keepLate(session.deviceId, key, outcome)) unknownKey(session, re, key);
        return;
      }
      case 'log': {
        const taskId = msg.payload.task_id ?? (msg.payload.key ? session.taskOf(msg.payload.key) : undefined);
        // Stored first (secrets stripped, task checked against the device's owner), then
        // shown live to the task's monitors as stored.
        recordDeviceLog(this.deps.orm.em, {
          userId: session.userId, taskId, deviceId: session.deviceId,
          level: msg.payload.level, message: msg.payload.message, details: msg.payload.details,
        }).then((log) => {
          if (!log.taskId) return;
          live.publish({
            userId: session.userId,
            event: {
              task_id: log.taskId, kind: 'log', at: log.createdAt.getTime(),
              data: { level: log.level, message: log.message, key: msg.payload.key ?? null, details: log.details ?? null },
            },
          });
        }).catch((err) => this.deps.logger.warn({ err }, 'device log not stored'));
        return;
      }
      case 'device/status':
        return;
    }
  }

  // ---- monitors ------------------------------------------------------------------------------

  private runMonitor(ws: WebSocket, id: { userId: string; sessionId: string; exp: number }): void {
    const conn = this.open(ws, 'monitor');
    this.monitorCount++;
    // Logout closes this socket (closeSession); so does the token's expiry.
    const peers = this.monitorsBySession.get(id.sessionId) ?? new Set<WebSocket>();
    peers.add(ws);
    this.monitorsBySession.set(id.sessionId, peers);
    const expiry = setTimeout(() => ws.close(CloseCode.TokenInvalid, 'token expired'), Math.max(0, id.exp * 1000 - Date.now()));
    expiry.unref();

    const m: MonitorState = { ws, userId: id.userId, subs: new Map(), userFeed: null };
    const mine = this.monitorsByUser.get(id.userId) ?? new Set<MonitorState>();
    mine.add(m);
    this.monitorsByUser.set(id.userId, mine);
    ws.on('message', (data, isBinary) => {
      conn.lastSeen = Date.now();
      const parsed = decode(ws, data, isBinary, monitorMessageSchema);
      if (!parsed) return;
      this.onMonitorMessage(m, parsed.message, parsed.envelope.id).catch((err) => {
        this.deps.logger.error({ err }, 'monitor message failed');
        send(ws, { type: 'error', payload: { code: WsErrorCode.ServerError, message: 'internal error' } }, parsed.envelope.id);
      });
    });
    ws.on('close', () => {
      this.monitorCount--;
      clearTimeout(expiry);
      peers.delete(ws);
      if (peers.size === 0) this.monitorsBySession.delete(id.sessionId);
      mine.delete(m);
      if (mine.size === 0 && this.monitorsByUser.get(id.userId) === mine) this.monitorsByUser.delete(id.userId);
      m.userFeed?.();
      for (const detach of m.subs.values()) detach();
      m.subs.clear();
    });
  }

  /**
   * Sends a run's event (or raw history event) to a monitor, serialized once for all of them.
   * Backpressure: live-only frames are dropped past WS_LIVE_DROP_BYTES unsent; a durable one
   * due past WS_OVERLOAD_CLOSE_BYTES closes the monitor with 1013 (it resumes with after_seq).
   */
  private deliver(ws: WebSocket, msg: Extract<ServerMessage, { type: 'task/event' | 'history/event' }>, durable: boolean): void {
    if (ws.readyState !== ws.OPEN) return;
    const unsent = ws.bufferedAmount;
    if (durable && unsent > this.deps.config.WS_OVERLOAD_CLOSE_BYTES) {
      this.backpressure.overloadClosed++;
      this.deps.logger.warn({ unsent }, 'monitor too far behind; closing with 1013');
      ws.close(CloseCode.Overloaded, 'too far behind; resubscribe with after_seq');
      return;
    }
    if (!durable && unsent > this.deps.config.WS_LIVE_DROP_BYTES) {
      this.backpressure.liveDropped++;
      return;
    }
    ws.send(sharedFrame(msg));
  }

  private async onMonitorMessage(m: MonitorState, msg: MonitorMessage, re: string): Promise<void> {
    const { ws } = m;
    switch (msg.type) {
      case 'ping':
        send(ws, { type: 'pong', payload: {} }, re);
        return;
      case 'subscribe': {
        if ('scope' in msg.payload) {
          m.userFeed?.();
          m.userFeed = this.deps.feeds.add(m.userId, {
            event: (ev) => this.deliver(ws, { type: 'task/event', payload: ev }, ev.seq !== undefined),
            notify: (n) => send(ws, { type: 'notification', payload: n }),
          });
          send(ws, { type: 'subscribed', payload: { scope: 'user' } }, re);
          return;
        }
        const { task_id: taskId, after_seq: afterSeq = 0, raw = false } = msg.payload;
        const task = await this.tasks.get(taskId);
        if (!task || task.userId !== m.userId) {
          send(ws, { type: 'error', payload: { code: WsErrorCode.NotFound, message: 'task not found' } }, re);
          return;
        }
        if (ws.readyState !== ws.OPEN) return;
        m.subs.get(taskId)?.();
        // `subscribed` and the replay of every event so far leave in one write, not one each.
        corked(ws, () => {
          send(ws, { type: 'subscribed', payload: { task_id: taskId, status: task.status, ...(raw ? { raw } : {}) } }, re);
          m.subs.set(taskId, raw
            ? this.deps.streams.watchRaw(taskId, (ev) => this.deliver(ws, { type: 'history/event', payload: ev }, true), afterSeq)
            : this.deps.streams.watch(taskId, (ev) => this.deliver(ws, { type: 'task/event', payload: ev }, true), afterSeq));
        });
        return;
      }
      case 'unsubscribe': {
        if ('scope' in msg.payload) {
          m.userFeed?.();
          m.userFeed = null;
          send(ws, { type: 'unsubscribed', payload: { scope: 'user' } }, re);
          return;
        }
        const taskId = msg.payload.task_id;
        m.subs.get(taskId)?.();
        m.subs.delete(taskId);
        send(ws, { type: 'unsubscribed', payload: { task_id: taskId } }, re);
        return;
      }
    }
  }
}

interface MonitorState {
  ws: WebSocket;
  userId: string;
  /** taskId -> detach from its history stream. */
  subs: Map<string, () => void>;
  /** Detach from the user feed, when subscribed to `{scope: "user"}`. */
  userFeed: (() => void) | null;
}

/**
 * A task's owner and status for subscribes, read in batches: every subscribe that arrives
 * while a read is running waits for the next one, so a burst of monitors costs a few queries,
 * and each answer is read after its subscribe arrived (a deleted task is refused).
 */
class TaskLookups {
  private readonly orm: Orm;
  private pending = new Map<string, ((row: { userId: string; status: string } | null, err?: unknown) => void)[]>();
  private running = false;

  constructor(orm: Orm) {
    this.orm = orm;
  }

  get(taskId: string): Promise<{ userId: string; status: string } | null> {
    return new Promise((resolve, reject) => {
      const waiters = this.pending.get(taskId) ?? [];
      waiters.push((row, err) => (err ? reject(err) : resolve(row)));
      this.pending.set(taskId, waiters);
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.size) {
      const batch = [...this.pending].slice(0, 500);
      for (const [id] of batch) this.pending.delete(id);
      try {
        const rows = await this.orm.em.getConnection().execute<{ id: string; user_id: string; status: string }[]>(
          `select id, user_id, status from tasks where id in (${batch.map(() => '?').join(', ')})`,
          batch.map(([id]) => id),
        );
        const found = new Map(rows.map((r) => [r.id, { userId: r.user_id, status: r.status }]));
        for (const [id, waiters] of batch) for (const w of waiters) w(found.get(id) ?? null);
      } catch (err) {
        for (const [, waiters] of batch) for (const w of waiters) w(null, err);
      }
    }
    this.running = false;
  }
}

/**
 * Runs `fn` with the socket's writes held, then sends them as one write (one syscall instead
 * of one per frame: a replay of a run's events is most of a subscribe's cost). `ws` keeps its
 * net.Socket in `_socket`; its own per-frame cork/uncork nests inside ours.
 */
function corked(ws: WebSocket, fn: () => void): void {
  const socket = (ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
  socket?.cork();
  try {
    fn();
  } finally {
    socket?.uncork();
  }
}

function send(ws: WebSocket, msg: ServerMessage, re?: string): void {
  if (ws.readyState === ws.OPEN) ws.send(frame(msg, re));
}

function unknownKey(session: DeviceSession, re: string, key: string): void {
  session.send({ type: 'error', payload: { code: WsErrorCode.NotFound, message: `no step in flight with key ${key} on this device` } }, re);
}

/** Parses a frame; answers `error` (with `re`) for a bad one and keeps the connection. */
function decode<T>(ws: WebSocket, data: RawData, isBinary: boolean, schema: Parameters<typeof parseFrame<T>>[1]) {
  if (isBinary) {
    send(ws, { type: 'error', payload: { code: WsErrorCode.InvalidFrame, message: 'binary frames are not supported; send JSON text' } });
    return null;
  }
  const res = parseFrame(rawToString(data), schema);
  if (!res.ok) {
    send(ws, { type: 'error', payload: { code: res.code, message: res.message, ...(res.errors ? { errors: res.errors } : {}) } }, res.re);
    return null;
  }
  return res;
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

function refuse(socket: Duplex, status: number, text: string): void {
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
  }
  socket.destroy();
}
