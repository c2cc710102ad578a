// The PostgreSQL NOTIFY channels and their payloads. Statements in db/ and domain/ send on them
// (inside their transactions, so only committed changes are announced); ws/pg-bus.ts listens.
export const LIVE_CHANNEL = 'jarvis_live';
export const EVENTS_CHANNEL = 'jarvis_events';
/** "device D connected with session S": other nodes close their older session of D (4409). */
export const DEVICES_CHANNEL = 'jarvis_devices';

export interface DeviceAnnouncement {
  deviceId: string;
  sessionId: string;
  /** When the session started (ms since epoch); the newer session wins. */
  startedAt: number;
}
export const SESSIONS_CHANNEL = 'jarvis_sessions';
export interface TaskEventsNotice {
  user_id: string;
  task_id: string;
  seq: number;
}

