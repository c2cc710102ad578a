// `{scope: "user"}` subscriptions: every durable event of every task of a user, new tasks
// included, plus the notifications those events caused (stored by the run mirror in the same
// transaction, src/domain/notifications.ts). Fed by the run mirror's NOTIFY (committed events
// only) and read from task_events and notifications, once per notice per node however many of
// the user's monitors listen.
import type { Orm } from '../db/orm.ts';
import type { Logger } from '../logger.ts';
import type { NotificationNotice, TaskEventsNotice } from './pg-bus.ts';
import type { NotificationPayload, TaskEventPayload } from '../protocol/index.ts';
import type { Notification } from '../db/entities.ts';
import * as notificationsDb from '../db/notifications.ts';
import * as tasksDb from '../db/tasks.ts';

export interface UserFeedListener {
  event(ev: TaskEventPayload): void;
  notify(n: NotificationPayload): void;
}

export class UserFeeds {
  private readonly byUser = new Map<string, Set<UserFeedListener>>();
  /** Last seq delivered per task, for the tasks this node has seen notices of. */
  private readonly cursors = new Map<string, number>();
  /** The last delivery still under way per task: the next one waits for it. */
  private readonly deliveries = new Map<string, Promise<void>>();
  private readonly orm: Orm;
  private readonly logger: Logger;

  constructor(orm: Orm, logger: Logger) {
    this.orm = orm;
    this.logger = logger;
  }

  add(userId: string, l: UserFeedListener): () => void {
    const set = this.byUser.get(userId) ?? new Set();
    set.add(l);
    this.byUser.set(userId, set);
    return () => {
      set.delete(l);
      if (set.size === 0) this.byUser.delete(userId);
    };
  }

  get listeners(): number {
    let n = 0;
    for (const s of this.byUser.values()) n += s.size;
    return n;
  }

  /** A notification no run event announces (an approval reminder): read it and pass it on. */
  onStored(n: NotificationNotice): void {
    if (!this.byUser.get(n.user_id)?.size) return;
    notificationsDb.byId(this.orm.em.fork(), { userId: n.user_id }, n.id)
      .then((note) => {
        if (!note) return; // deleted with its task meanwhile
        const frame = toFrame(note);
        for (const l of this.byUser.get(n.user_id) ?? []) l.notify(frame);
      })
      .catch((err) => this.logger.warn({ err, notificationId: n.id }, 'user feed notification read failed'));
  }

  onNotice(n: TaskEventsNotice & { from_seq?: number }): void {
    const listeners = this.byUser.get(n.user_id);
    if (!listeners?.size) return;
    const from = Math.max(this.cursors.get(n.task_id) ?? (n.from_seq ?? n.seq) - 1, 0);
    if (n.seq <= from) return;
    this.cursors.set(n.task_id, n.seq);
    if (this.cursors.size > 100_000) this.cursors.clear();
    // Reads run side by side, deliveries one after the other in notice order: two notices of a
    // task close together (a batch folded right after the one before it) must not reach monitors
    // as [2, 3, 1] because the first read came back last.
    const em = this.orm.em.fork();
    const read = Promise.all([
      tasksDb.eventsBetween(em, n.task_id, from, n.seq),
      notificationsDb.ofTaskEvents(em, { userId: n.user_id }, n.task_id, from, n.seq),
    ]);
    read.catch(() => undefined); // handled below, in order (not an unhandled rejection meanwhile)
    const previous = this.deliveries.get(n.task_id);
    const delivered: Promise<void> = (previous ? previous.then(() => read) : read)
      .then(([rows, notes]) => {
        const bySeq = new Map(notes.map((x) => [x.seq, x]));
        for (const r of rows) {
          const ev: TaskEventPayload = { task_id: r.taskId, seq: r.seq, kind: r.kind, at: r.at.getTime(), data: r.data };
          const note = bySeq.get(r.seq);
          const frame = note && toFrame(note);
          for (const l of this.byUser.get(n.user_id) ?? []) {
            l.event(ev);
            if (frame) l.notify(frame);
          }
        }
      })
      .catch((err) => this.logger.warn({ err, taskId: n.task_id }, 'user feed read failed'))
      .finally(() => {
        if (this.deliveries.get(n.task_id) === delivered) this.deliveries.delete(n.task_id);
      });
    this.deliveries.set(n.task_id, delivered);
  }
}

function toFrame(n: Notification): NotificationPayload {
  // Every kind is about a run so far (the mirror and the approval sweep write them), so a task id is always there.
  return { id: n.id, task_id: n.taskId!, kind: n.kind, title: n.title, body: n.body ?? null, at: n.createdAt.getTime() };
}
