// A device's side of /ws: one live connection per device across all nodes (a newer one replaces
// the older), presence in PostgreSQL, waking the runs that wait for the device, and the frames a
// device sends (step answers settle their dispatch; logs are stored then shown live).
import type { WebSocket } from 'ws';
import type { Client } from '@temporalio/client';
import type { Config } from '../config.ts';
import type { DeviceEndReason } from '../db/channels.ts';
import type { Orm } from '../db/orm.ts';
import { markOffline, markOnline, recordDeviceStatus, touchPresence } from '../domain/devices.ts';
import { PgFileStore } from '../db/file-chunks.ts';
import { OwnedRepos } from '../db/owned.ts';
import { attachArtifact } from '../domain/artifacts.ts';
import { recordDeviceLog } from '../domain/logs.ts';
import { AppError } from '../errors.ts';
import { signalDeviceOnline } from '../domain/tasks.ts';
import type { Logger } from '../logger.ts';
import {
  CloseCode, LARGE_DEVICE_FRAMES, MAX_ARTIFACT_BYTES, MAX_CONTROL_FRAME_BYTES, MAX_FRAME_BYTES, WsErrorCode, parseDeviceFrame, type DeviceToServer, type ParseOptions,
} from '../protocol/index.ts';
import { unstorableInput } from '../validation.ts';
import { DeviceConnection, isNewerConnection, type DeviceConnections } from './device-connections.ts';
import type { PgBus } from './pg-bus.ts';
import type { Connection, WsTransport } from './transport.ts';

/** Why a device's connection is ended from outside (its credentials changed, or its account went). */
export type DeviceConnectionEnd = DeviceEndReason;

export interface DeviceHandlerDeps {
  config: Config;
  logger: Logger;
  orm: Orm;
  temporal: Client;
  connections: DeviceConnections;
  live: PgBus;
}

// What PostgreSQL cannot store (NUL, lone surrogates) or too deep: refused at the edge, never a
// run whose events can no longer be recorded.
const limits: ParseOptions = {
  refuse: unstorableInput,
  maxBytes: (type) => (LARGE_DEVICE_FRAMES.has(type) ? MAX_FRAME_BYTES : MAX_CONTROL_FRAME_BYTES),
  smallFrameBytes: MAX_CONTROL_FRAME_BYTES,
};
const parse = (text: string) => parseDeviceFrame(text, limits);

export class DeviceHandler {
  private readonly deps: DeviceHandlerDeps;
  private readonly transport: WsTransport;
  private readonly files = new PgFileStore();
  /** Each connection's last device/status write: the next waits for it (and for its presence). */
  private readonly statusWrites = new WeakMap<DeviceConnection, Promise<void>>();
  /** Set on shutdown: the node marks all its devices offline itself. */
  closing = false;

  constructor(deps: DeviceHandlerDeps, transport: WsTransport) {
    this.deps = deps;
    this.transport = transport;
  }

  get count(): number {
    return this.deps.connections.size;
  }

  /** A device connected on another node: a newer connection there replaces ours. */
  onConnectedElsewhere(d: { deviceId: string; connectionId: string; startedAt: number }): void {
    // An announcement can land after a newer connection opened here, so only a newer one closes ours.
    const mine = this.deps.connections.get(d.deviceId);
    if (mine && mine.connectionId !== d.connectionId && isNewerConnection(d, mine)) replace(mine);
  }

  /** Closes the device's connection here (only one accepted before `before`, when given). */
  end(deviceId: string, reason: DeviceConnectionEnd, before?: number): void {
    const conn = this.deps.connections.get(deviceId);
    if (!conn || (before !== undefined && conn.startedAt >= before)) return;
    conn.socket.close(CloseCode.TokenInvalid, reason);
  }

  run(conn: Connection, id: { deviceId: string; userId: string }): void {
    const { connections, orm, logger, config, temporal, live } = this.deps;
    const { ws } = conn;
    const startedAt = new Date();
    const device = new DeviceConnection(id.deviceId, id.userId, conn.id, ws, startedAt.getTime());
    const replaced = connections.add(device);
    if (replaced) replace(replaced);
    const log = logger.child({ deviceId: id.deviceId, connection: conn.id });
    let lastTouch = Date.now();
    // Presence first, then the announcement that closes an older connection elsewhere (whose
    // offline then changes nothing: the row names this connection already, so the user feeds
    // see no offline-online flicker), then wake the runs waiting for this device.
    const ready = (async () => {
      if (!(await markOnline(orm.em.fork(), id.deviceId, config.NODE_ID, conn.id, startedAt))) {
        // A newer connection of this device exists elsewhere: this one is already replaced.
        closeReplaced(ws);
        return;
      }
      await live.announceDevice({ deviceId: id.deviceId, connectionId: conn.id, startedAt: startedAt.getTime() });
      await signalDeviceOnline(orm.em.fork(), temporal, id.deviceId, config.NODE_ID);
    })().catch((err) => log.error({ err }, 'could not record device presence'));
    this.statusWrites.set(device, ready);

    ws.on('message', (data, isBinary) => {
      const got = this.transport.receive(conn, data, isBinary, parse, limits);
      if (!got) return;
      this.onFrame(device, got.frame, got.id);
      if (got.frame.type === 'ping' && Date.now() - lastTouch > config.WS_HEARTBEAT_MS / 2) {
        lastTouch = Date.now();
        touchPresence(orm.em.fork(), id.deviceId, conn.id).catch((err) => log.warn({ err }, 'presence update failed'));
      }
    });
    ws.on('close', (code) => {
      device.dropAll('device disconnected');
      if (connections.remove(device) && !this.closing) {
        void ready.then(() => markOffline(orm.em.fork(), id.deviceId, conn.id)).catch((err) =>
          log.error({ err }, 'could not record device offline'));
      }
      log.debug({ code }, 'device disconnected');
    });
  }

  private onFrame(device: DeviceConnection, msg: DeviceToServer, re: string): void {
    switch (msg.type) {
      case 'ping':
        device.send({ type: 'pong', payload: {} }, re);
        return;
      case 'step/accept':
        if (!device.accept(msg.payload.key)) unknownKey(device, re, msg.payload.key);
        return;
      case 'step/progress':
        if (!device.progress(msg.payload.key, { percent: msg.payload.percent, message: msg.payload.message })) {
          unknownKey(device, re, msg.payload.key);
        }
        return;
      case 'step/result':
      case 'step/error': {
        const outcome = msg.type === 'step/result'
          ? { ok: true as const, output: msg.payload.output ?? null }
          : { ok: false as const, error: msg.payload.error };
        const key = msg.payload.key;
        if (device.settle(key, outcome)) return;
        // Its dispatch is gone (connection replaced, activity retried): keep it for the re-dispatch.
        if (!this.deps.connections.keepLate(device.deviceId, key, outcome)) unknownKey(device, re, key);
        return;
      }
      case 'log':
        this.storeLog(device, msg.payload);
        return;
      case 'device/status':
        this.storeStatus(device, msg.payload);
        return;
      case 'step/artifact':
        this.storeArtifact(device, msg.payload, re);
        return;
    }
  }

  /**
   * Stores a file the device attaches to a step of its own (bound to its key: a device writes
   * only to steps dispatched to it): in flight on this connection, or dispatched to it on an
   * earlier connection to this node and not yet answered (the answer will come late). The step's
   * answer waits until it is stored. Refusals (size, type, quota) come back as `error` frames
   * with the contract's code.
   */
  private storeArtifact(device: DeviceConnection, p: Extract<DeviceToServer, { type: 'step/artifact' }>['payload'], re: string): void {
    const { orm, config, logger, connections } = this.deps;
    const step = connections.attachable(device.deviceId, p.key, device.stepOf(p.key));
    if (!step) return unknownKey(device, re, p.key);
    device.touch(p.key);
    const stored = attachArtifact(new OwnedRepos(orm.em.fork(), device.userId), this.files, {
      ...step, key: p.key, kind: p.kind ?? 'file', name: p.name, bytes: Buffer.from(p.data, 'base64'),
    }, { maxBytes: MAX_ARTIFACT_BYTES, quotaBytes: config.USER_QUOTA_BYTES });
    connections.attach(device.deviceId, p.key, stored);
    stored.catch((err: unknown) => {
      if (err instanceof AppError) {
        device.send({ type: 'error', payload: { code: err.code, message: err.message } }, re);
        return;
      }
      logger.error({ err, key: p.key }, 'artifact not stored');
      device.send({ type: 'error', payload: { code: WsErrorCode.ServerError, message: 'artifact not stored' } }, re);
    });
  }

  /**
   * One write after another per connection, after its presence (the write is conditioned on
   * being the current connection): a device that says busy then idle ends idle.
   */
  private storeStatus(device: DeviceConnection, status: Extract<DeviceToServer, { type: 'device/status' }>['payload']): void {
    const { orm, logger } = this.deps;
    const prev = this.statusWrites.get(device) ?? Promise.resolve();
    const next = prev
      .then(() => recordDeviceStatus(orm.em.fork(), device.deviceId, device.connectionId, status))
      .then(() => undefined, (err) => logger.warn({ err, deviceId: device.deviceId }, 'device status not stored'));
    this.statusWrites.set(device, next);
  }

  /** Stored first (secrets stripped, task checked against the device's owner), then shown live as stored. */
  private storeLog(device: DeviceConnection, p: Extract<DeviceToServer, { type: 'log' }>['payload']): void {
    const taskId = p.task_id ?? (p.key ? device.taskOf(p.key) : undefined);
    recordDeviceLog(this.deps.orm.em, {
      userId: device.userId, taskId, deviceId: device.deviceId, level: p.level, message: p.message, details: p.details,
    }).then((log) => {
      if (!log.taskId) return;
      this.deps.live.publish({
        userId: device.userId,
        event: {
          task_id: log.taskId, kind: 'log', at: log.createdAt.getTime(),
          data: { level: log.level, message: log.message, key: p.key ?? null, details: log.details ?? null },
        },
      });
    }).catch((err) => this.deps.logger.warn({ err }, 'device log not stored'));
  }
}

function replace(old: DeviceConnection): void {
  old.dropAll('replaced by a newer connection');
  closeReplaced(old.socket);
}

function closeReplaced(ws: WebSocket): void {
  ws.close(CloseCode.Replaced, 'replaced by a newer connection');
}

function unknownKey(device: DeviceConnection, re: string, key: string): void {
  device.send({ type: 'error', payload: { code: WsErrorCode.NotFound, message: `no step in flight with key ${key} on this device` } }, re);
}
