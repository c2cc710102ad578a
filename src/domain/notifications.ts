// Which run events a person should hear about, and in what words. Pure: the run mirror calls it
// on the events it folds (src/domain/run-mirror.ts), inside the transaction that stores them, so
// a notification exists exactly when its event does.
import type { NotificationKind } from '../db/entities.ts';
import type { NotificationDraft } from '../db/notifications.ts';
import type { RunEvent } from '../../workflows/api.ts';

/** A notification's body is for a phone's lock screen: the rest is one tap away. */
export const MAX_BODY_CHARS = 500;

/** Approvals that wait longer than this (a century) get no reminder. */
const MAX_REMINDED_TIMEOUT_MS = 100 * 365 * 24 * 3600 * 1000;

/** A task submitted by a schedule carries this idempotency key prefix (src/domain/schedules.ts). */
const SCHEDULED_KEY_PREFIX = 'schedule:';

export interface RunContext {
  /** The task's idempotency key: tells a scheduled run from one a person started. */
  idempotencyKey?: string | null;
}

const clip = (text: string): string => (text.length > MAX_BODY_CHARS ? `${text.slice(0, MAX_BODY_CHARS - 1)}…` : text);

function errorOf(data: Record<string, unknown>): { code: string; message: string | null } {
  const err = data.error as { code?: unknown; message?: unknown } | undefined;
  return {
    code: typeof err?.code === 'string' ? err.code : 'ERROR',
    message: typeof err?.message === 'string' && err.message ? err.message : null,
  };
}

/** The notification `ev` causes, or null when it is none of a person's business. */
export function notificationOf(ev: RunEvent, run: RunContext): NotificationDraft | null {
  const d = ev.data ?? {};
  const draft = (kind: NotificationKind, title: string, body: string | null, expiresAt: Date | null = null): NotificationDraft =>
    ({ seq: ev.seq, kind, title, body: body === null ? null : clip(body), expiresAt });
  switch (ev.kind) {
    case 'run.completed':
      return draft('run.completed', 'Run completed', null);
    case 'run.failed': {
      const { code, message } = errorOf(d);
      // A scheduled run fails with nobody watching: its own kind, so a person may follow only those.
      const scheduled = run.idempotencyKey?.startsWith(SCHEDULED_KEY_PREFIX) ?? false;
      return draft(scheduled ? 'schedule.run_failed' : 'run.failed', scheduled ? `Scheduled run failed: ${code}` : `Run failed: ${code}`, message);
    }
    case 'run.cancelled':
      return draft('run.cancelled', 'Run cancelled', typeof d.reason === 'string' ? d.reason : null);
    case 'run.waiting_approval': {
      // The workflow's timer starts with the event: the approval times out `timeout_ms` after it.
      // (A timeout past any date PostgreSQL stores never expires, as far as reminders go.)
      const timeout = d.timeout_ms;
      const expiresAt = typeof timeout === 'number' && timeout > 0 && timeout < MAX_REMINDED_TIMEOUT_MS ? new Date(ev.at + timeout) : null;
      return draft('approval.requested', 'Approval needed', typeof d.message === 'string' && d.message ? d.message : null, expiresAt);
    }
    case 'run.pending':
      // The run waits for its device: once per wait (the workflow emits it when the wait starts).
      return d.reason === 'device_offline' ? draft('device.offline', 'Device offline', 'The run waits for its device to come online.') : null;
    default:
      return null;
  }
}

/** The notifications a batch of (newly folded) events causes, in seq order. */
export function notificationsOf(events: readonly RunEvent[], run: RunContext): NotificationDraft[] {
  return events.map((ev) => notificationOf(ev, run)).filter((n): n is NotificationDraft => n !== null);
}

/** The title of the reminder an approval gets before it times out (after the workflow's name). */
export const APPROVAL_EXPIRING_TITLE = 'Approval expires soon';
