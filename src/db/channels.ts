// The PostgreSQL NOTIFY channels and their payloads. Statements in db/ and domain/ send on them
// (inside their transactions, so only committed changes are announced); ws/pg-bus.ts listens.
export const LIVE_CHANNEL = 'jarvis_live';
export const EVENTS_CHANNEL = 'jarvis_events';
/** "device D connected with connection C": other nodes close their older connection of D (4409). */
export const DEVICES_CHANNEL = 'jarvis_devices';

export interface DeviceAnnouncement {
  deviceId: string;
  connectionId: string;
  /** When the connection started (ms since epoch); the newer connection wins. */
  startedAt: number;
}
/**
 * A device's live connection must end, on whichever node holds it (4401): its account was
 * deleted (sent by the deleting statement), its token rotated or it was unbound.
 */
export const DEVICE_ENDS_CHANNEL = 'jarvis_device_ends';
export const DEVICE_END_REASONS = ['device token rotated', 'device unbound', 'account deleted'] as const;
export type DeviceEndReason = (typeof DEVICE_END_REASONS)[number];
export interface DeviceEndNotice {
  device_id: string;
  reason: DeviceEndReason;
  /**
   * Only connections accepted before this (ms since epoch) end: one made since with a rotated
   * token stays. Absent: any (the account or device is gone, no connection can be newer).
   */
  before?: number;
}
/** A revoked login session's id: every node forgets it and closes its monitors. */
export const SESSIONS_CHANNEL = 'jarvis_sessions';
export interface TaskEventsNotice {
  user_id: string;
  task_id: string;
  seq: number;
}

/**
 * A device's presence changed (online, offline, busy, idle): sent by the statement that changed
 * it, so every node's user feeds hear of committed changes only, in commit order.
 */
export const PRESENCE_CHANNEL = 'jarvis_presence';
export interface PresenceNotice {
  user_id: string;
  device_id: string;
  change: 'online' | 'offline' | 'busy' | 'idle';
  is_online: boolean;
  is_busy: boolean;
  at: number;
}
/**
 * A device's readings (cpu, memory, battery of its `device/status`) changed: sent by the statement
 * that stored them, with the whole set as stored. The user feeds throttle them per device.
 */
export const READINGS_CHANNEL = 'jarvis_readings';
export interface ReadingsNotice {
  user_id: string;
  device_id: string;
  status: { cpu_percent?: number; memory_percent?: number; battery?: { percent: number; charging?: boolean } };
  at: number;
}
/** "user U has a new notification N" for notifications no run event announces (approval reminders). */
export const NOTIFICATIONS_CHANNEL = 'jarvis_notifications';
export interface NotificationNotice {
  user_id: string;
  id: string;
}

/**
 * "the notification outbox has work": a stored notification or a redelivery asked for, sent by the
 * statement that wrote it (so only committed work is announced; PostgreSQL folds repeats within a
 * transaction into one). It wakes the dispatcher on every API node; its timer is only the sweep
 * for what a lost notice left (a LISTEN connection down at the time) and for held pushes coming due.
 */
export const OUTBOX_CHANNEL = 'jarvis_outbox';
