// Logs of users and devices: stored per user, optionally about one of the user's tasks.
// Nothing secret is stored: keys that look like credentials are stripped from `details`.
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { LOG_CATEGORIES, LOG_LEVELS, type Log, type LogCategory, type LogLevel } from '../db/entities.ts';
import * as logsDb from '../db/logs.ts';

export const MAX_LOG_MESSAGE = 10_000;

/** Keys whose values never reach the database: password, token, secret, authorization (any case, any depth). */
const SECRET_KEY = /pass(?:word|wd)|token|secret|authori[sz]ation|api[-_]?key|cookie|credential|private[-_]?key/i;
/** Deeper than this, details are cut (a log is not a document store). */
const MAX_DEPTH = 16;
/**
 * Largest stored `details`, as JSON. Larger ones are kept as a marker with their size and the
 * start of their text: a page of 100 logs stays under 2 MB however the logs were written.
 */
export const MAX_LOG_DETAILS_BYTES = 16 * 1024;
/** How much of oversized details is kept as a preview. */
const DETAILS_PREVIEW_CHARS = 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Text PostgreSQL can store: no NUL (text and jsonb refuse it), no lone surrogate halves. */
export function storableText(s: string): string {
  return s.replace(/\u0000/g, '').replace(LONE_SURROGATE, '\ufffd');
}

/** A copy of `value` without secret-looking keys, at any depth (arrays included); strings made storable. */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return storableText(value);
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[truncated]';
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1));
  if (value instanceof Date) return value.toISOString();
  // fromEntries defines own properties: a `__proto__` key stays data, never a prototype.
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .filter(([k, v]) => !isSecretKey(k) && v !== undefined)
      .map(([k, v]) => [storableText(k), redactSecrets(v, depth + 1)]),
  );
}

/** `details` as stored: itself up to MAX_LOG_DETAILS_BYTES of JSON, a truncation marker beyond. */
export function boundedDetails(details: unknown): unknown {
  const json = JSON.stringify(details);
  const bytes = Buffer.byteLength(json);
  if (bytes <= MAX_LOG_DETAILS_BYTES) return details;
  return { truncated: true, bytes, preview: json.slice(0, DETAILS_PREVIEW_CHARS) };
}

export interface NewLog {
  userId: string;
  taskId?: string | null;
  deviceId?: string | null;
  level: LogLevel;
  category: LogCategory;
  message: string;
  details?: unknown;
}

/** Inserts one log row (details redacted). The caller has checked that taskId is the user's. */
export async function insertLog(em: EntityManager, input: NewLog): Promise<Log> {
  return logsDb.insert(em, { userId: input.userId }, {
    id: randomUUID(),
    taskId: input.taskId ?? null,
    deviceId: input.deviceId ?? null,
    level: input.level,
    category: input.category,
    message: storableText(input.message).slice(0, MAX_LOG_MESSAGE),
    details: input.details === undefined || input.details === null ? null : boundedDetails(redactSecrets(input.details)),
    createdAt: new Date(),
  });
}

export interface DeviceLogInput {
  userId: string;
  taskId?: string | null;
  deviceId: string;
  level: string;
  message: string;
  details?: unknown;
}

/**
 * A device's `log` frame, stored for GET /logs and GET /tasks/:id/logs. The task id is kept only
 * when it is one of that user's tasks (otherwise the row is stored with task_id null), details
 * lose their secret-looking keys, the message is cut at 10,000 characters and an unknown level is
 * stored as `info`. Works on a fork of `em` (e.g. `orm.em`); the row is written at once.
 */
export async function recordDeviceLog(em: EntityManager, input: DeviceLogInput): Promise<Log> {
  // A fork of its own: the caller's unit of work is neither flushed nor grown.
  em = em.fork();
  let taskId: string | null = null;
  if (input.taskId && UUID.test(input.taskId)) {
    if (await logsDb.isUsersTask(em, { userId: input.userId }, input.taskId)) taskId = input.taskId;
  }
  const level = (LOG_LEVELS as readonly string[]).includes(input.level) ? (input.level as LogLevel) : 'info';
  return insertLog(em, {
    userId: input.userId,
    taskId,
    deviceId: input.deviceId,
    level,
    category: 'device',
    message: String(input.message ?? ''),
    details: input.details,
  });
}

export function presentLog(l: Log) {
  return {
    id: l.id,
    level: l.level,
    category: l.category,
    message: l.message,
    details: l.details ?? null,
    task_id: l.taskId ?? null,
    device_id: l.deviceId ?? null,
    created_at: l.createdAt.toISOString(),
  };
}

export { LOG_CATEGORIES, LOG_LEVELS };
