// A monitor's side of /ws: subscriptions to runs (replay after after_seq, then live) and to the
// user feed, delivery with backpressure, and closing when the login session behind the access
// token ends (logout, revocation, expiry).
import type { WebSocket } from 'ws';
import type { Config } from '../config.ts';
import type { Orm } from '../db/orm.ts';
import type { Logger } from '../logger.ts';
import { CloseCode, READINGS_FRAME_MS, WsErrorCode, encodeSharedFrame, parseMonitorFrame, type MonitorToServer, type ServerToMonitor } from '../protocol/index.ts';
import type { HistoryStreams } from './history-stream.ts';
import type { LiveEvent } from './live-bus.ts';
import type { PresenceNotice, ReadingsNotice } from './pg-bus.ts';
import { TaskLookups } from './task-lookups.ts';
import { corked, send, type Connection, type WsTransport } from './transport.ts';
import type { UserFeeds } from './user-feed.ts';

/** Why monitors are closed from outside: their login session ended. */
export type LoginSessionEnd = 'logged out' | 'session revoked';

export interface MonitorHandlerDeps {
  config: Config;
  logger: Logger;
  orm: Orm;
  streams: HistoryStreams;
  feeds: UserFeeds;
}

interface MonitorState {
  ws: WebSocket;
  userId: string;
  /** taskId -> detach from its history stream. */
  subs: Map<string, () => void>;
  /** Detach from the user feed, when subscribed to `{scope: "user"}`. */
  userFeed: (() => void) | null;
}

type EventFrame = Extract<ServerToMonitor, { type: 'task/event' | 'history/event' }>;

export class MonitorHandler {
  private readonly deps: MonitorHandlerDeps;
  private readonly transport: WsTransport;
  private readonly tasks: TaskLookups;
  private monitors = 0;
  /** Login session id -> its monitors' sockets here. */
  private readonly byLoginSession = new Map<string, Set<WebSocket>>();
  /** This node's monitors by user: a live event goes to its user's monitors only. */
  private readonly byUser = new Map<string, Set<MonitorState>>();
  /** Monitor sockets per user on this node, from the upgrade request until the TCP socket closes. */
  private readonly sockets = new Map<string, number>();
  /** Slow monitors: live-only frames dropped, monitors closed with 1013 (tests and logs read it). */
  readonly backpressure = { liveDropped: 0, overloadClosed: 0 };
  /**
   * Devices whose readings were sent less than READINGS_FRAME_MS ago, with the latest that came
   * since: a device reporting every second must not flood the feeds, and the last readings of a
   * burst are never lost.
   */
  private readonly readingsWindows = new Map<string, { latest: ReadingsNotice | null }>();

  constructor(deps: MonitorHandlerDeps, transport: WsTransport) {
    this.deps = deps;
    this.transport = transport;
    this.tasks = new TaskLookups(deps.orm);
  }

  get count(): number {
    return this.monitors;
  }

  /** A place for one more monitor socket of the user on this node (its release), or null at `max`. */
  admit(userId: string, max: number): (() => void) | null {
    const n = this.sockets.get(userId) ?? 0;
    if (n >= max) return null;
    this.sockets.set(userId, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.sockets.get(userId) ?? 1) - 1;
      if (left > 0) this.sockets.set(userId, left);
      else this.sockets.delete(userId);
    };
  }

  /** A live (not durable) event of a user's run: to the monitors watching it or the user feed. */
  onLiveEvent(e: LiveEvent): void {
    for (const m of this.byUser.get(e.userId) ?? []) {
      if (m.subs.has(e.event.task_id) || m.userFeed) this.deliver(m.ws, { type: 'task/event', payload: e.event }, false);
    }
  }

  /** A device's presence changed: to its user's monitors subscribed to the user feed. */
  onPresence(p: PresenceNotice): void {
    const { user_id: userId, ...payload } = p;
    for (const m of this.byUser.get(userId) ?? []) {
      if (m.userFeed && m.ws.readyState === m.ws.OPEN) send(m.ws, { type: 'device/presence', payload });
    }
  }

  /** A device's readings changed: to its user's feeds, at most once a window per device, the latest at its end. */
  onReadings(r: ReadingsNotice): void {
    const open = this.readingsWindows.get(r.device_id);
    if (open) {
      open.latest = r;
      return;
    }
    const { user_id: userId, ...payload } = r;
    for (const m of this.byUser.get(userId) ?? []) {
      if (m.userFeed && m.ws.readyState === m.ws.OPEN) send(m.ws, { type: 'device/readings', payload });
    }
    const window: { latest: ReadingsNotice | null } = { latest: null };
    this.readingsWindows.set(r.device_id, window);
    setTimeout(() => {
      this.readingsWindows.delete(r.device_id);
      if (window.latest) this.onReadings(window.latest);
    }, READINGS_FRAME_MS).unref();
  }

  endLoginSession(sessionId: string, reason: LoginSessionEnd): void {
    for (const ws of this.byLoginSession.get(sessionId) ?? []) ws.close(CloseCode.TokenInvalid, reason);
  }

  run(conn: Connection, id: { userId: string; sessionId: string; exp: number }): void {
    const { ws } = conn;
    this.monitors++;
    // Logout closes this socket (endLoginSession); so does the token's expiry.
    const peers = this.byLoginSession.get(id.sessionId) ?? new Set<WebSocket>();
    peers.add(ws);
    this.byLoginSession.set(id.sessionId, peers);
    const expiry = setTimeout(() => ws.close(CloseCode.TokenInvalid, 'token expired'), Math.max(0, id.exp * 1000 - Date.now()));
    expiry.unref();

    const m: MonitorState = { ws, userId: id.userId, subs: new Map(), userFeed: null };
    const mine = this.byUser.get(id.userId) ?? new Set<MonitorState>();
    mine.add(m);
    this.byUser.set(id.userId, mine);
    ws.on('message', (data, isBinary) => {
      const got = this.transport.receive(conn, data, isBinary, parseMonitorFrame);
      if (!got) return;
      this.onFrame(m, got.frame, got.id).catch((err) => {
        this.deps.logger.error({ err }, 'monitor message failed');
        send(ws, { type: 'error', payload: { code: WsErrorCode.ServerError, message: 'internal error' } }, got.id);
      });
    });
    ws.on('close', () => {
      this.monitors--;
      clearTimeout(expiry);
      peers.delete(ws);
      if (peers.size === 0) this.byLoginSession.delete(id.sessionId);
      mine.delete(m);
      if (mine.size === 0 && this.byUser.get(id.userId) === mine) this.byUser.delete(id.userId);
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
  private deliver(ws: WebSocket, msg: EventFrame, durable: boolean): void {
    if (ws.readyState !== ws.OPEN) return;
    const unsent = ws.bufferedAmount;
    const { config, logger } = this.deps;
    if (durable && unsent > config.WS_OVERLOAD_CLOSE_BYTES) {
      this.backpressure.overloadClosed++;
      logger.warn({ unsent }, 'monitor too far behind; closing with 1013');
      ws.close(CloseCode.Overloaded, 'too far behind; resubscribe with after_seq');
      return;
    }
    if (!durable && unsent > config.WS_LIVE_DROP_BYTES) {
      this.backpressure.liveDropped++;
      return;
    }
    ws.send(encodeSharedFrame(msg));
  }

  private async onFrame(m: MonitorState, msg: MonitorToServer, re: string): Promise<void> {
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
        const task = await this.tasks.get(taskId, m.userId);
        if (!task) {
          send(ws, { type: 'error', payload: { code: WsErrorCode.NotFound, message: 'task not found' } }, re);
          return;
        }
        if (ws.readyState !== ws.OPEN) return;
        if (!m.subs.has(taskId) && m.subs.size >= this.deps.config.WS_MAX_SUBSCRIPTIONS) {
          // Each subscription holds a history stream: bounded per socket like everything else.
          const max = this.deps.config.WS_MAX_SUBSCRIPTIONS;
          send(ws, { type: 'error', payload: { code: WsErrorCode.TooMany, message: `at most ${max} task subscriptions per socket; unsubscribe first` } }, re);
          return;
        }
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
