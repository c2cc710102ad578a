// Brings PostgreSQL (and the device lanes) in line with Temporal for runs that ended without
// running our workflow code: terminated or timed out by an operator in the Temporal UI or CLI.
// Such a run is closed but its TaskStatus search attribute still says it is not finished.
import type { Client } from '@temporalio/client';
import type { Orm } from './db/orm.ts';
import { FINISHED_STATUSES } from './db/entities.ts';
import type { Logger } from './logger.ts';
import { DeviceLanes } from './domain/device-lanes.ts';
import { applyRunEvents } from './domain/run-mirror.ts';
import { readRunEvents } from './ws/history-stream.ts';
import { TASK_RUN_WORKFLOW } from '../workflows/api.ts';
import * as tasksDb from './db/tasks.ts';
import { sweepOrphanSchedules } from './domain/schedules.ts';

export interface ReconcilerDeps {
  temporal: Client;
  orm: Orm;
  logger: Logger;
  intervalMs?: number;
  /** How far back closed runs are looked at. */
  lookbackMs?: number;
  /** How often Temporal Schedules without a row are looked for (a list of every schedule). */
  scheduleSweepMs?: number;
}

export function startReconciler({ temporal, orm, logger, intervalMs = 2000, lookbackMs = 3600_000, scheduleSweepMs = 60_000 }: ReconcilerDeps) {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const done = new Set<string>();
  const lanes = new DeviceLanes(orm.em, temporal);

  async function pass(): Promise<number> {
    const since = new Date(Date.now() - lookbackMs).toISOString();
    const query = `WorkflowType = '${TASK_RUN_WORKFLOW}' AND ExecutionStatus != 'Running' ` +
      `AND TaskStatus IN ('pending', 'running', 'paused') AND CloseTime > '${since}'`;
    let fixed = 0;
    for await (const run of temporal.workflow.list({ query })) {
      if (stopped) break;
      const taskId = run.workflowId.replace(/^task-/, '');
      if (done.has(run.runId)) continue;
      if (done.size > 10_000) done.clear();
      const em = orm.em.fork();
      const task = await tasksDb.statusAndDevice(em, taskId);
      if (task && !FINISHED_STATUSES.includes(task.status)) {
        await applyRunEvents(orm, taskId, await readRunEvents(temporal, taskId));
        // Its hold or place in its device's lane (idempotent: nothing to give up is fine).
        await lanes.release(task.deviceId, taskId);
        logger.info({ taskId, temporalStatus: run.status.name }, 'reconciled a run that ended outside its workflow code');
        fixed++;
      }
      done.add(run.runId);
    }
    return fixed;
  }

  // Schedules whose row is gone (a crash between the two deletes, a row removed by hand) would
  // fire for nobody and out of their user's sight: deleted here, and by their own next firing.
  let lastSweep = Date.now();
  const sweep = async () => {
    lastSweep = Date.now();
    const deleted = await sweepOrphanSchedules(orm, temporal);
    if (deleted) logger.info({ deleted }, 'deleted Temporal schedules that had no row');
    return deleted;
  };

  const loop = async () => {
    if (stopped) return;
    try {
      await pass();
      if (Date.now() - lastSweep >= scheduleSweepMs) await sweep();
    } catch (err) {
      logger.warn({ err }, 'reconciler pass failed');
    }
    if (!stopped) timer = setTimeout(loop, intervalMs);
  };
  timer = setTimeout(loop, intervalMs);
  return {
    pass,
    sweep,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
