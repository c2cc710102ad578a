// The WebSocket transport under the gateway: the upgrade at /ws with its credentials, the frame
// size limit, the heartbeat sweep, shutdown, and turning raw frames into parsed ones (or an
// `error` answer). It knows nothing of what devices and monitors say: that is the handlers'.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Logger } from '../logger.ts';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import {
  CloseCode,
  MAX_FRAME_BYTES,
  MAX_MONITOR_FRAME_BYTES,
  PROTOCOL_VERSION,
  WsErrorCode,
  TYPE_WITHIN_CHARS,
  checkLargeFrame,
  encodeFrame,
  type ParseOptions,
  type Parsed,
  type ServerFrame,
} from '../protocol/index.ts';
import type { Identity } from './authenticate.ts';

/** One open socket, as the transport tracks it. */
export interface Connection {
  readonly ws: WebSocket;
  /** Sent in hello as `session_id`: this connection's id, not a login session's. */
  readonly id: string;
  lastSeen: number;
}

export interface TransportOptions {
  logger: Logger;
  heartbeatMs: number;
  identify(token: string): Promise<Identity | null>;
  /**
   * Takes a place for one more socket of this identity: its release (called when the TCP socket
   * closes, whether or not the upgrade completed), or null when there is none (429).
   */
  admit(identity: Identity): (() => void) | null;
  /** Called once the socket is open and `hello` sent. */
  accept(conn: Connection, identity: Identity): void;
}

export class WsTransport {
  private readonly opts: TransportOptions;
  /** One server per role: each with the largest frame its role may send (see protocol/constants). */
  private readonly wss: Record<Identity['role'], WebSocketServer>;
  private readonly conns = new Set<Connection>();
  private sweeper?: NodeJS.Timeout;

  constructor(opts: TransportOptions) {
    this.opts = opts;
    // ws closes a connection with 1009 (CloseCode.TooBig) when a frame is larger than maxPayload,
    // as soon as the frame's header says so: an oversized frame is never buffered.
    this.wss = {
      device: new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, clientTracking: false }),
      monitor: new WebSocketServer({ noServer: true, maxPayload: MAX_MONITOR_FRAME_BYTES, clientTracking: false }),
    };
  }

  attach(server: Server): void {
    server.on('upgrade', (req, socket, head) => {
      this.upgrade(req, socket, head).catch((err) => {
        // PostgreSQL away (the token check needs it): retry later, as the REST API answers.
        if (isDatabaseUnavailable(err)) return refuse(socket, 503, 'Service Unavailable', 'Retry-After: 5\r\n');
        this.opts.logger.error({ err }, 'websocket upgrade failed');
        refuse(socket, 500, 'Internal Server Error');
      });
    });
    this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.floor(this.opts.heartbeatMs / 4)));
    this.sweeper.unref();
  }

  /** Closes every socket with "going away" (clients reconnect, to another node), then waits for them. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const c of this.conns) c.ws.close(CloseCode.GoingAway, 'server shutting down; reconnect');
    const deadline = Date.now() + 2000;
    while (this.conns.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.conns) c.ws.terminate();
  }

  /**
   * Parses a frame that arrived on `conn` (any frame counts for the heartbeat). A bad one is
   * answered with `error` (with `re` when its id was readable) and the connection stays up.
   */
  receive<T>(conn: Connection, data: RawData, isBinary: boolean, parse: (text: string) => Parsed<T>, limits?: ParseOptions): { frame: T; id: string } | null {
    conn.lastSeen = Date.now();
    if (isBinary) {
      send(conn.ws, { type: 'error', payload: { code: WsErrorCode.InvalidFrame, message: 'binary frames are not supported; send JSON text' } });
      return null;
    }
    if (limits?.smallFrameBytes !== undefined && Buffer.isBuffer(data) && data.length > limits.smallFrameBytes) {
      // A large frame of a small type is refused on its first bytes, before the rest is decoded
      // (a small frame, the usual one, decodes nothing twice).
      const refused = checkLargeFrame(data.subarray(0, TYPE_WITHIN_CHARS).toString('utf8'), data.length, limits);
      if (refused) {
        send(conn.ws, { type: 'error', payload: refused.error }, refused.re);
        return null;
      }
    }
    const res = parse(rawToString(data));
    if (!res.ok) {
      send(conn.ws, { type: 'error', payload: res.error }, res.re);
      return null;
    }
    return { frame: res.frame, id: res.envelope.id };
  }

  private sweep(): void {
    const limit = this.opts.heartbeatMs * 1.5;
    const now = Date.now();
    for (const c of this.conns) {
      if (now - c.lastSeen > limit) c.ws.close(CloseCode.HeartbeatMissed, 'heartbeat missed');
    }
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/ws') return refuse(socket, 404, 'Not Found');
    // Browsers cannot set headers on a WebSocket: the page passes its token in the query.
    const header = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const token = (header ?? url.searchParams.get('token') ?? '').trim();
    const identity = token ? await this.opts.identify(token) : null;
    if (!identity) return refuse(socket, 401, 'Unauthorized');
    // Counted from the upgrade request on, so that many upgrades at once cannot all pass.
    const release = this.opts.admit(identity);
    if (!release) return refuse(socket, 429, 'Too Many Requests');
    socket.once('close', release);
    this.wss[identity.role].handleUpgrade(req, socket, head, (ws) => {
      const conn: Connection = { ws, id: crypto.randomUUID(), lastSeen: Date.now() };
      this.conns.add(conn);
      ws.on('close', () => this.conns.delete(conn));
      ws.on('error', (err) => this.opts.logger.debug({ err }, 'websocket error'));
      send(ws, {
        type: 'hello',
        payload: { role: identity.role, session_id: conn.id, heartbeat_ms: this.opts.heartbeatMs, protocol: PROTOCOL_VERSION },
      });
      this.opts.accept(conn, identity);
    });
  }
}

/** Sends one frame if the socket is still open (a frame for a closing socket is moot). */
export function send(ws: WebSocket, msg: ServerFrame, re?: string): void {
  if (ws.readyState === ws.OPEN) ws.send(encodeFrame(msg, re));
}

/**
 * Runs `fn` with the socket's writes held, then sends them as one write (one syscall instead
 * of one per frame: a replay of a run's events is most of a subscribe's cost). `ws` keeps its
 * net.Socket in `_socket`; its own per-frame cork/uncork nests inside ours.
 */
export function corked(ws: WebSocket, fn: () => void): void {
  const socket = (ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
  socket?.cork();
  try {
    fn();
  } finally {
    socket?.uncork();
  }
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

function refuse(socket: Duplex, status: number, text: string, headers = ''): void {
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${headers}Content-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
  }
  socket.destroy();
}
