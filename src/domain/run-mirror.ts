// Writes run events into PostgreSQL: the event log, and the task row and its steps (a fold of
// the log). Used by the persistence activities, the dispatch activity (the events a step carries)
// and the reconciler. Idempotent by seq, and order-tolerant: batches may land in any order (a
// run's writers run side by side), the fold advances over the log's gap-free prefix only.
//
// Under load the writes of many runs share one transaction (group commit): a process keeps at
// most WRITES_IN_FLIGHT mirror transactions open, and the writes that arrive meanwhile go
// together in the next one. One transaction of two round trips for many runs costs PostgreSQL
// one commit (one WAL flush) and one statement per kind instead of one each per run. A write
// that finds no transaction in flight goes at once, so an idle system adds no wait.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Orm } from '../db/orm.ts';
import { Task } from '../db/entities.ts';
import { dbOf, type Row, type Sql } from '../db/sql.ts';
import { abortRunningSteps, lockTasks, logEvents, writeFold, type EventBatch, type StepRow } from '../db/run-mirror.ts';
import { plainRow } from '../db/rows.ts';
import { insertForRun } from '../db/notifications.ts';
import type { RunEvent } from '../../workflows/api.ts';
import { notificationsOf } from './notifications.ts';
import { applyEvents, type StepWrite } from './task-mirror.ts';

/** Mirror transactions a process keeps open at once; more writes wait and go together. */
const WRITES_IN_FLIGHT = 2;
/** Writes in one transaction at most (its statements grow with them). */
const MAX_GROUP = 64;

/**
 * Writes a batch of a run's events. `also`: statements committed in the same transaction whatever
 * the batch does (the run's last write releases its device lane there); their rows are returned.
 */
export function applyRunEvents(orm: Orm, taskId: string, batch: RunEvent[], also: Sql[] = []): Promise<Row[][]> {
  return writerOf(orm.em).write(taskId, batch, also);
}

/**
 * Commits a task's small write (its Temporal run id at submission) in the mirror's next shared
 * transaction: under load one commit less per run. The rows of each statement.
 */
export function commitBesideMirror(em: EntityManager, taskId: string, statements: Sql[]): Promise<Row[][]> {
  return writerOf(em).write(taskId, [], statements);
}

function writerOf(em: EntityManager): GroupWriter {
  const connection = em.getConnection();
  let writer = writers.get(connection);
  if (!writer) writers.set(connection, (writer = new GroupWriter(em)));
  return writer;
}

interface Write {
  taskId: string;
  batch: RunEvent[];
  also: Sql[];
  resolve(rows: Row[][]): void;
  reject(err: unknown): void;
}

const writers = new WeakMap<object, GroupWriter>();

/** The mirror writes of one process (one connection pool), grouped into shared transactions. */
class GroupWriter {
  private readonly em: EntityManager;
  private queue: Write[] = [];
  private inFlight = 0;
  /** Tasks with a write in flight: their next write waits for it (no lock wait inside a group). */
  private readonly busy = new Set<string>();

  constructor(em: EntityManager) {
    this.em = em;
  }

  write(taskId: string, batch: RunEvent[], also: Sql[]): Promise<Row[][]> {
    if (batch.length === 0 && also.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.queue.push({ taskId, batch, also, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < WRITES_IN_FLIGHT && this.queue.length > 0) {
      const group: Write[] = [];
      const rest: Write[] = [];
      const tasks = new Set<string>();
      for (const w of this.queue) {
        // One write per task in a group, and none of a task already being written: in queue order.
        if (group.length < MAX_GROUP && !this.busy.has(w.taskId) && !tasks.has(w.taskId)) {
          tasks.add(w.taskId);
          group.push(w);
        } else rest.push(w);
      }
      if (group.length === 0) return;
      this.queue = rest;
      this.inFlight++;
      for (const t of tasks) this.busy.add(t);
      void this.settle(group).finally(() => {
        this.inFlight--;
        for (const t of tasks) this.busy.delete(t);
        this.pump();
      });
    }
  }

  /**
   * Writes a group; when its transaction fails (one write's bad input, a deadlock), each half
   * goes again on its own, down to single writes, so that one write's failure is its own.
   */
  private async settle(group: Write[]): Promise<void> {
    try {
      const rows = await writeGroup(this.em, group);
      group.forEach((w, i) => w.resolve(rows[i]));
    } catch (err) {
      if (group.length === 1) return group[0].reject(err);
      const half = Math.ceil(group.length / 2);
      await this.settle(group.slice(0, half));
      await this.settle(group.slice(half));
    }
  }
}

/**
 * One transaction in two round trips (src/db/sql.ts) for every write of the group: the
 * engine's hottest write. Answers each write's rows of its `also`.
 */
async function writeGroup(em: EntityManager, writes: readonly Write[]): Promise<Row[][][]> {
  const db = await dbOf(em);
  return db.transaction(async (tx) => {
    const statements: Sql[] = [];
    const logged: EventBatch[] = writes.filter((w) => w.batch.length > 0)
      .map((w) => ({ taskId: w.taskId, events: [...w.batch].sort((a, b) => a.seq - b.seq) }));
    let begun = false;
    if (logged.length > 0) {
      // Trip 1: the row locks, then the batches into the log with the events waiting past a gap.
      const [, lockedRows, waitingRows] = await tx.run(['begin', lockTasks(logged.map((b) => b.taskId)), logEvents(logged)]);
      begun = true;
      const locked = new Map(lockedRows.map((r) => [String(r.id), r]));
      const waiting = new Map<string, RunEvent[]>();
      for (const r of waitingRows) {
        const list = waiting.get(String(r.task_id)) ?? [];
        list.push({ seq: Number(r.seq), kind: r.kind as RunEvent['kind'], at: new Date(r.at as string | Date).getTime(), data: r.data as Record<string, unknown> });
        waiting.set(String(r.task_id), list);
      }
      for (const b of logged) {
        const row = locked.get(b.taskId);
        if (row) statements.push(...foldStatements(em, row, b.events, waiting.get(b.taskId) ?? []));
        // else: the task was deleted; nothing to mirror
      }
    }
    // Trip 2: the folds, then each write's `also`, then COMMIT.
    const alsoAt: number[] = [];
    const tail: Sql[] = [];
    for (const w of writes) {
      alsoAt.push(tail.length);
      tail.push(...w.also);
    }
    const head = begun ? 0 : 1;
    const res = await tx.run([...(begun ? [] : ['begin' as const]), ...statements, ...tail, 'commit']);
    const alsoRows = res.slice(head + statements.length, -1);
    return writes.map((w, i) => alsoRows.slice(alsoAt[i], alsoAt[i] + w.also.length));
  });
}

/** What one task's fold writes: `sorted` is its batch in seq order, `waiting` the events past a gap. */
function foldStatements(em: EntityManager, row: Row, sorted: readonly RunEvent[], waiting: RunEvent[]): Sql[] {
  const task = plainRow(em, Task, row);
  const before = task.lastSeq;
  // A batch past a gap waits in the log; the batch that fills the gap folds it.
  if (sorted[0].seq > before + 1) return [];
  const events = gapFree([...sorted, ...waiting], before);
  const steps = stepRows(applyEvents(task, events));
  const statements: Sql[] = [];
  if (task.lastSeq > before) {
    // In the fold's transaction: its NOTIFY (sent at commit) tells the user feed to read them.
    const notifications = notificationsOf(events, task);
    if (notifications.length) statements.push(insertForRun(task, task.id, notifications));
    statements.push(writeFold(task, steps, before + 1));
  }
  if ((task.status === 'cancelled' || task.status === 'failed') && task.finishedAt) statements.push(abortRunningSteps(task));
  return statements;
}

/**
 * One row per step key, as the sequence of writes would leave it: created by its first write,
 * status, end and result from its last (an upsert may touch a row once per statement).
 */
function stepRows(writes: StepWrite[]): StepRow[] {
  const rows = new Map<string, StepRow>();
  for (const w of writes) {
    const row = rows.get(w.key);
    const finishedAt = w.status === 'running' ? null : w.at;
    if (!row) {
      rows.set(w.key, {
        key: w.key, nodeId: w.nodeId, nodeType: w.nodeType || 'unknown', name: w.name, attempt: w.attempt, status: w.status,
        output: w.output ?? null, error: w.error ?? null, startedAt: w.at, finishedAt,
      });
      continue;
    }
    row.status = w.status;
    row.finishedAt = finishedAt;
    if (w.status !== 'running') {
      row.output = w.output ?? null;
      row.error = w.error ?? null;
    }
  }
  return [...rows.values()];
}

/** The events that continue `lastSeq` without a gap, in seq order. */
function gapFree(events: RunEvent[], lastSeq: number): RunEvent[] {
  const out: RunEvent[] = [];
  let next = lastSeq + 1;
  for (const ev of events) {
    if (ev.seq < next) continue; // applied already
    if (ev.seq > next) break;
    out.push(ev);
    next++;
  }
  return out;
}
