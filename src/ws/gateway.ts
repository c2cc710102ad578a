// The WebSocket gateway at /ws of an API node: the transport (transport.ts) hands each
// authenticated connection to the device handler or the monitor handler; the frames they speak
// are src/protocol's. Routes end connections through it when credentials change, by saying why,
// never by close code.
import type { Server } from 'node:http';
import type { Client } from '@temporalio/client';
import type { Config } from '../config.ts';
import type { Orm } from '../db/orm.ts';
import { Sessions, type SessionCache } from '../domain/sessions.ts';
import type { AccessTokens } from '../domain/tokens.ts';
import type { Logger } from '../logger.ts';
import { identify } from './authenticate.ts';
import type { DeviceConnections } from './device-connections.ts';
import { DeviceHandler, type DeviceConnectionEnd } from './device-handler.ts';
import type { HistoryStreams } from './history-stream.ts';
import { MonitorHandler, type LoginSessionEnd } from './monitor-handler.ts';
import type { PgBus } from './pg-bus.ts';
import { WsTransport } from './transport.ts';
import type { UserFeeds } from './user-feed.ts';

export type { DeviceConnectionEnd } from './device-handler.ts';
export type { LoginSessionEnd } from './monitor-handler.ts';

export interface GatewayDeps {
  config: Config;
  logger: Logger;
  orm: Orm;
  temporal: Client;
  tokens: AccessTokens;
  deviceConnections: DeviceConnections;
  live: PgBus;
  streams: HistoryStreams;
  feeds: UserFeeds;
  /** Shared with the REST app: open login sessions trusted for a moment. */
  sessionCache?: SessionCache;
}

export class Gateway {
  private readonly live: PgBus;
  private readonly logger: Logger;
  private readonly transport: WsTransport;
  private readonly devices: DeviceHandler;
  private readonly monitors: MonitorHandler;
  private readonly unlisten: (() => void)[] = [];

  constructor(deps: GatewayDeps) {
    const { config, logger, orm, tokens } = deps;
    this.live = deps.live;
    this.logger = logger;
    const loginSessions = new Sessions(tokens, config.REFRESH_TOKEN_TTL_S, deps.sessionCache);
    this.transport = new WsTransport({
      logger,
      heartbeatMs: config.WS_HEARTBEAT_MS,
      identify: (token) => identify(orm, tokens, loginSessions, token),
      // Devices have one connection each (a newer one replaces the older); monitors are counted.
      admit: (who) => (who.role === 'device' ? () => undefined : this.monitors.admit(who.userId, config.WS_MAX_MONITORS_PER_USER)),
      accept: (conn, who) => (who.role === 'device' ? this.devices.run(conn, who) : this.monitors.run(conn, who)),
    });
    this.devices = new DeviceHandler({ ...deps, connections: deps.deviceConnections }, this.transport);
    this.monitors = new MonitorHandler(deps, this.transport);
  }

  get counts() {
    return { devices: this.devices.count, monitors: this.monitors.count };
  }

  /** Slow monitors: live-only frames dropped, monitors closed with 1013 (tests and logs read it). */
  get backpressure() {
    return this.monitors.backpressure;
  }

  attach(server: Server): void {
    this.transport.attach(server);
    this.unlisten.push(
      // One live connection per device across all nodes: a newer one elsewhere replaces ours.
      this.live.onDeviceConnected((d) => this.devices.onConnectedElsewhere(d)),
      // A device's credentials or account gone, told on any node: its connection here ends.
      this.live.onDeviceEnd((d) => this.devices.end(d.device_id, d.reason, d.before)),
      // A login session revoked on any node (logout, refresh token reuse): its monitors here go too.
      this.live.onSessionRevoked((sid) => this.monitors.endLoginSession(sid, 'session revoked')),
      this.live.subscribe((e) => this.monitors.onLiveEvent(e)),
      this.live.onPresence((p) => this.monitors.onPresence(p)),
      this.live.onReadings((r) => this.monitors.onReadings(r)),
    );
  }

  /**
   * Ends a device's live connection, on this node at once and on the others through NOTIFY:
   * its credentials changed (token rotated, device unbound).
   */
  endDeviceConnection(deviceId: string, reason: DeviceConnectionEnd): void {
    this.devices.end(deviceId, reason);
    this.live.endDevice({ device_id: deviceId, reason, before: Date.now() }).catch((err) =>
      this.logger.warn({ err, deviceId }, 'could not tell the other nodes to end a device connection'));
  }

  /** Closes the monitors opened with access tokens of this login session. */
  endLoginSession(sessionId: string, reason: LoginSessionEnd): void {
    this.monitors.endLoginSession(sessionId, reason);
  }

  /** Closes every socket with "going away": clients reconnect (to another node). */
  async close(): Promise<void> {
    this.devices.closing = true;
    for (const off of this.unlisten.splice(0)) off();
    await this.transport.close();
  }
}
