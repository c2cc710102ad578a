// Fan-out across API nodes through PostgreSQL LISTEN/NOTIFY (no extra broker):
// - `jarvis_live`: live-only events (step progress, device logs) from the node holding the
//   device to monitors on every node;
// - `jarvis_events`: "task T of user U has durable events up to seq S", sent by the run
//   mirror inside its transaction (so only committed events are announced), for monitors
//   subscribed to a whole user (`{scope: "user"}`);
// - `jarvis_devices`: a device's new connection (older ones elsewhere close 4409);
// - `jarvis_device_ends`: a device whose connection must end wherever it is (4401): account
//   deleted (sent in the deleting statement), token rotated, device unbound;
// - `jarvis_sessions`: a revoked login session id, sent in the revoking statement, so that
//   every node drops it from its session cache and closes its monitor sockets;
// - `jarvis_presence`: a device's presence changed, sent in the changing statement, for the
//   user feeds on every node (this one included: the notice is the only path).
// - `jarvis_notifications`: a notification no run event announces (an approval reminder), for
//   the user feeds.
// - `jarvis_outbox`: the notification outbox has work (a stored notification, a redelivery), for
//   the notification dispatcher.
import pg from 'pg';
import type { Logger } from '../logger.ts';
import type { LiveBus, LiveEvent } from './live-bus.ts';
import {
  DEVICE_END_REASONS, DEVICE_ENDS_CHANNEL, DEVICES_CHANNEL, EVENTS_CHANNEL, LIVE_CHANNEL, NOTIFICATIONS_CHANNEL, OUTBOX_CHANNEL, PRESENCE_CHANNEL, READINGS_CHANNEL, SESSIONS_CHANNEL,
  type DeviceAnnouncement, type DeviceEndNotice, type NotificationNotice, type PresenceNotice, type ReadingsNotice, type TaskEventsNotice,
} from '../db/channels.ts';

export type { DeviceAnnouncement, DeviceEndNotice, NotificationNotice, PresenceNotice, ReadingsNotice, TaskEventsNotice };

/** PostgreSQL rejects NOTIFY payloads of 8000 bytes or more. */
const MAX_PAYLOAD = 7900;

export class PgBus implements LiveBus {
  private readonly databaseUrl: string;
  private readonly nodeId: string;
  private readonly logger: Logger;
  private readonly pool: pg.Pool;
  private listener?: pg.Client;
  private readonly liveListeners = new Set<(e: LiveEvent) => void>();
  private readonly noticeListeners = new Set<(n: TaskEventsNotice) => void>();
  private readonly notificationListeners = new Set<(n: NotificationNotice) => void>();
  private readonly outboxListeners = new Set<() => void>();
  private readonly deviceListeners = new Set<(d: DeviceAnnouncement) => void>();
  private readonly deviceEndListeners = new Set<(d: DeviceEndNotice) => void>();
  private readonly revokedListeners = new Set<(sessionId: string) => void>();
  private readonly presenceListeners = new Set<(p: PresenceNotice) => void>();
  private readonly readingsListeners = new Set<(r: ReadingsNotice) => void>();
  private closed = false;
  /** Whether LISTEN is up now: notices sent meanwhile reach this node. */
  listening = false;
  /** Changes each time LISTEN is lost or regained (notices in between may be lost). */
  listenEpoch = 0;
  private retry = 200;

  constructor(databaseUrl: string, nodeId: string, logger: Logger) {
    this.databaseUrl = databaseUrl;
    this.nodeId = nodeId;
    this.logger = logger;
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    // An idle client whose server went away (PostgreSQL restarting) is dropped by the pool, which
    // then emits 'error': unheard, that would end the process.
    this.pool.on('error', (err) => this.logger.warn({ err }, 'a pooled PostgreSQL connection was lost'));
  }

  async start(): Promise<void> {
    // Keepalive: a silently dead connection is noticed (and the session cache stops trusting it).
    const client = new pg.Client({ connectionString: this.databaseUrl, keepAlive: true });
    client.on('notification', (msg) => this.onNotification(msg.channel, msg.payload));
    const lost = (err?: Error) => {
      if (this.listener !== client) return;
      this.logger.warn({ err }, 'LISTEN connection lost; reconnecting');
      void this.reconnect();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    await client.connect();
    await client.query(`listen ${LIVE_CHANNEL}; listen ${EVENTS_CHANNEL}; listen ${DEVICES_CHANNEL}; listen ${DEVICE_ENDS_CHANNEL}; listen ${SESSIONS_CHANNEL}; listen ${PRESENCE_CHANNEL}; listen ${READINGS_CHANNEL}; listen ${NOTIFICATIONS_CHANNEL}; listen ${OUTBOX_CHANNEL}`);
    this.listener = client;
    this.retry = 200;
    this.listenEpoch++;
    this.listening = true;
  }

  private async reconnect(): Promise<void> {
    if (this.closed) return;
    this.listening = false;
    this.listenEpoch++;
    const old = this.listener;
    this.listener = undefined;
    old?.removeAllListeners('notification');
    await old?.end().catch(() => undefined);
    await new Promise((r) => setTimeout(r, this.retry));
    this.retry = Math.min(this.retry * 2, 5000);
    try {
      await this.start();
    } catch (err) {
      this.logger.warn({ err }, 'LISTEN reconnect failed');
      void this.reconnect();
    }
  }

  private onNotification(channel: string, payload: string | undefined): void {
    if (channel === OUTBOX_CHANNEL) {
      for (const fn of this.outboxListeners) fn(); // no payload: the outbox itself says what
      return;
    }
    if (!payload) return;
    if (channel === SESSIONS_CHANNEL) {
      for (const fn of this.revokedListeners) fn(payload); // the session id itself
      return;
    }
    try {
      const msg = JSON.parse(payload);
      if (channel === LIVE_CHANNEL) {
        if (msg.origin === this.nodeId) return; // delivered locally already
        for (const fn of this.liveListeners) fn(msg.event as LiveEvent);
      } else if (channel === EVENTS_CHANNEL) {
        for (const fn of this.noticeListeners) fn(msg as TaskEventsNotice);
      } else if (channel === NOTIFICATIONS_CHANNEL) {
        const n = { user_id: String(msg.user_id), id: String(msg.id) };
        for (const fn of this.notificationListeners) fn(n);
      } else if (channel === DEVICES_CHANNEL) {
        if (msg.origin === this.nodeId) return;
        const d = { deviceId: String(msg.deviceId), connectionId: String(msg.connectionId), startedAt: Number(msg.startedAt) };
        for (const fn of this.deviceListeners) fn(d);
      } else if (channel === DEVICE_ENDS_CHANNEL) {
        // This node's own notices too: the one path for every node.
        const reason = DEVICE_END_REASONS.find((r) => r === msg.reason) ?? 'device unbound';
        const d: DeviceEndNotice = { device_id: String(msg.device_id), reason, ...(typeof msg.before === 'number' ? { before: msg.before } : {}) };
        for (const fn of this.deviceEndListeners) fn(d);
      } else if (channel === PRESENCE_CHANNEL) {
        for (const fn of this.presenceListeners) fn(msg as PresenceNotice);
      } else if (channel === READINGS_CHANNEL) {
        for (const fn of this.readingsListeners) fn(msg as ReadingsNotice);
      }
    } catch (err) {
      this.logger.warn({ err, channel }, 'bad notification payload');
    }
  }

  /** Delivers to this node's monitors at once, and to other nodes through NOTIFY. */
  publish(e: LiveEvent): void {
    for (const fn of this.liveListeners) fn(e);
    let payload = JSON.stringify({ origin: this.nodeId, event: e });
    if (Buffer.byteLength(payload) > MAX_PAYLOAD) {
      // Live events are best effort: shorten what does not fit rather than drop the event.
      const data = { ...e.event.data, message: String(e.event.data.message ?? '').slice(0, 1000), details: null, truncated: true };
      payload = JSON.stringify({ origin: this.nodeId, event: { ...e, event: { ...e.event, data } } });
      if (Buffer.byteLength(payload) > MAX_PAYLOAD) return;
    }
    this.pool.query('select pg_notify($1, $2)', [LIVE_CHANNEL, payload]).catch((err) =>
      this.logger.warn({ err }, 'live NOTIFY failed'));
  }

  subscribe(fn: (e: LiveEvent) => void): () => void {
    this.liveListeners.add(fn);
    return () => this.liveListeners.delete(fn);
  }

  onTaskEvents(fn: (n: TaskEventsNotice) => void): () => void {
    this.noticeListeners.add(fn);
    return () => this.noticeListeners.delete(fn);
  }

  onStoredNotification(fn: (n: NotificationNotice) => void): () => void {
    this.notificationListeners.add(fn);
    return () => this.notificationListeners.delete(fn);
  }

  /** The notification outbox has new work (committed). */
  onOutbox(fn: () => void): () => void {
    this.outboxListeners.add(fn);
    return () => this.outboxListeners.delete(fn);
  }

  /** Tells the other nodes that this device has a new connection here. */
  announceDevice(d: DeviceAnnouncement): Promise<void> {
    return this.pool
      .query('select pg_notify($1, $2)', [DEVICES_CHANNEL, JSON.stringify({ origin: this.nodeId, ...d })])
      .then(() => undefined);
  }

  /**
   * Another node accepted a connection of a device. Notifications can arrive late, after an even
   * newer connection: listeners compare `startedAt` rather than trusting arrival order.
   */
  onDeviceConnected(fn: (d: DeviceAnnouncement) => void): () => void {
    this.deviceListeners.add(fn);
    return () => this.deviceListeners.delete(fn);
  }

  /** Tells every node (this one included) to close the device's live connection. */
  endDevice(d: DeviceEndNotice): Promise<void> {
    return this.pool.query('select pg_notify($1, $2)', [DEVICE_ENDS_CHANNEL, JSON.stringify(d)]).then(() => undefined);
  }

  /** A device's live connection must end, wherever it is. */
  onDeviceEnd(fn: (d: DeviceEndNotice) => void): () => void {
    this.deviceEndListeners.add(fn);
    return () => this.deviceEndListeners.delete(fn);
  }

  /** A device's presence changed (online, offline, busy, idle), on any node. */
  onPresence(fn: (p: PresenceNotice) => void): () => void {
    this.presenceListeners.add(fn);
    return () => this.presenceListeners.delete(fn);
  }

  /** A device's readings changed, on any node. */
  onReadings(fn: (r: ReadingsNotice) => void): () => void {
    this.readingsListeners.add(fn);
    return () => this.readingsListeners.delete(fn);
  }

  /** A login session was revoked (logout, refresh token reuse), on any node. */
  onSessionRevoked(fn: (sessionId: string) => void): () => void {
    this.revokedListeners.add(fn);
    return () => this.revokedListeners.delete(fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listening = false;
    this.listenEpoch++;
    this.revokedListeners.clear();
    this.liveListeners.clear();
    this.noticeListeners.clear();
    this.deviceListeners.clear();
    this.deviceEndListeners.clear();
    this.presenceListeners.clear();
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}
