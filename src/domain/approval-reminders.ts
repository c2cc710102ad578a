// approval.expiring: a reminder before an approval times out, written by a sweep that every API
// node runs (idempotent: the reminder is unique per approval). Its state is the notifications
// table itself, so no timer is lost to a crash or restart, and the run workflow stays as it is.
import type { Orm } from '../db/orm.ts';
import type { Logger } from '../logger.ts';
import * as notificationsDb from '../db/notifications.ts';
import { APPROVAL_EXPIRING_TITLE } from './notifications.ts';

export interface ApprovalRemindersOptions {
  orm: Orm;
  logger: Logger;
  /** How long before an approval times out its reminder is due (at most half its window). */
  leadMs: number;
  /** How often the sweep runs: reminders are that late at most. */
  intervalMs: number;
}

/** Runs the sweep every `intervalMs` until stopped. */
export function startApprovalReminders({ orm, logger, leadMs, intervalMs }: ApprovalRemindersOptions): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = notificationsDb.insertApprovalReminders(orm.em.fork(), leadMs, APPROVAL_EXPIRING_TITLE)
      .then((n) => { if (n) logger.debug({ reminders: n }, 'approval reminders written'); })
      .catch((err: unknown) => logger.warn({ err }, 'approval reminder sweep failed'))
      .finally(() => { if (!stopped) timer = setTimeout(tick, intervalMs); });
  };
  timer = setTimeout(tick, intervalMs);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
