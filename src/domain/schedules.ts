// Recurring runs as Temporal Schedules. The schedule fires scheduledRunWorkflow, which submits
// an ordinary task; the `schedules` row owns the schedule for its user.
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import type { Orm } from '../db/orm.ts';
import type { Priority, Schedule } from '../db/entities.ts';
import * as schedulesDb from '../db/schedules.ts';
import { OwnedRepos } from '../db/owned.ts';
import { errors } from '../errors.ts';
import type { scheduledRunWorkflow } from '../../workflows/scheduled-run.ts';
import { checkWorkflowParameters } from './parameter-schema.ts';
import { submitTask, type TaskEngine } from './tasks.ts';
import { refusedOverLimit } from '../db/quotas.ts';

export const SCHEDULED_RUN_WORKFLOW = 'scheduledRunWorkflow';

export interface ScheduleInput {
  workflow_id: string;
  device_id: string;
  name?: string;
  parameters?: Record<string, unknown>;
  priority?: Priority;
  cron?: string;
  interval_seconds?: number;
  timezone?: string;
  paused?: boolean;
}

export async function createSchedule(repos: OwnedRepos, engine: TaskEngine, input: ScheduleInput): Promise<Schedule> {
  await schedulesDb.checkTargets(repos, input.workflow_id, input.device_id);
  await checkWorkflowParameters(repos, input.workflow_id, input.parameters ?? {});
  const id = crypto.randomUUID();
  const schedule = await schedulesDb.insert(repos, {
    id,
    workflowId: input.workflow_id,
    deviceId: input.device_id,
    name: input.name ?? null,
    parameters: input.parameters ?? {},
    priority: input.priority ?? 'medium',
    cron: input.cron ?? null,
    intervalSeconds: input.interval_seconds ?? null,
    timezone: input.timezone ?? null,
    paused: input.paused ?? false,
    temporalScheduleId: `schedule-${id}`,
  }, engine.limits.schedules).catch(refusedOverLimit('schedules', engine.limits.schedules));
  try {
    await engine.temporal.schedule.create<typeof scheduledRunWorkflow>({
      scheduleId: schedule.temporalScheduleId,
      spec: {
        ...(schedule.cron ? { cronExpressions: [schedule.cron] } : {}),
        ...(schedule.intervalSeconds ? { intervals: [{ every: `${schedule.intervalSeconds}s` }] } : {}),
        ...(schedule.timezone ? { timezone: schedule.timezone } : {}),
      },
      action: {
        type: 'startWorkflow',
        workflowType: SCHEDULED_RUN_WORKFLOW,
        workflowId: `schedule-${id}-run`,
        taskQueue: engine.taskQueue,
        args: [{ scheduleId: id, taskQueue: engine.taskQueue }],
      },
      state: { paused: schedule.paused, note: schedule.paused ? 'created paused' : undefined },
      memo: { userId: repos.userId, name: schedule.name ?? undefined },
    });
  } catch (err) {
    await schedulesDb.removeById(repos, id);
    const msg = (err as Error).message;
    // The client turns INVALID_ARGUMENT on the spec (bad cron, unknown time zone) into a TypeError.
    const code = (err as { code?: number }).code ?? (err as { cause?: { code?: number } }).cause?.code;
    if (err instanceof TypeError || code === 3) {
      throw errors.invalid('invalid schedule', [{ path: input.cron ? 'cron' : 'timezone', message: msg }]);
    }
    throw errors.unavailable(`could not create the schedule: ${msg}`);
  }
  return schedule;
}

/** Next fire times and recent actions from Temporal; null when it cannot be reached. */
export async function describeSchedule(temporal: Client, s: Schedule) {
  try {
    const d = await temporal.connection.withDeadline(Date.now() + 3000, () =>
      temporal.schedule.getHandle(s.temporalScheduleId).describe());
    return {
      next_runs: d.info.nextActionTimes.slice(0, 5).map((t) => t.toISOString()),
      recent_runs: d.info.recentActions.slice(-5).map((a) => ({
        scheduled_at: a.scheduledAt.toISOString(),
        workflow_id: a.action.workflow.workflowId,
      })),
      paused: d.state.paused,
    };
  } catch {
    return null;
  }
}

export async function setSchedulePaused(repos: OwnedRepos, temporal: Client, id: string, paused: boolean) {
  const s = await schedulesDb.get(repos, id);
  const handle = temporal.schedule.getHandle(s.temporalScheduleId);
  try {
    if (paused) await handle.pause(`paused by ${repos.userId}`);
    else await handle.unpause(`resumed by ${repos.userId}`);
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw errors.unavailable(`could not reach the schedule: ${(err as Error).message}`);
  }
  s.paused = paused;
  await schedulesDb.save(repos);
  return s;
}

/**
 * Deletes the user's schedules that run on a device or run a workflow (before the device or the
 * workflow goes), each in Temporal first: a failure to reach Temporal is a 503 and leaves the
 * rows, so the user still sees, and can retry, what would otherwise fire unseen.
 */
export async function deleteSchedulesOf(repos: OwnedRepos, temporal: Client, target: { deviceId?: string; workflowId?: string }): Promise<number> {
  const schedules = await schedulesDb.ofTarget(repos, target);
  for (const s of schedules) {
    await deleteTemporalSchedule(temporal, s.temporalScheduleId);
    await schedulesDb.remove(repos, s);
  }
  return schedules.length;
}

/** Deletes a Temporal Schedule; one already gone is fine, Temporal unreachable is a 503. */
export async function deleteTemporalSchedule(temporal: Client, scheduleId: string): Promise<void> {
  try {
    await temporal.schedule.getHandle(scheduleId).delete();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw errors.unavailable(`could not delete the schedule: ${(err as Error).message}`);
  }
}

/**
 * Deletes Temporal Schedules of ours (`schedule-<uuid>`) that have no row: left by a crash between
 * the two writes, or by a row removed outside the API. The reconciler runs it; so does a firing
 * that finds no row. Answers how many it deleted.
 */
export async function sweepOrphanSchedules(orm: Orm, temporal: Client): Promise<number> {
  const ids: string[] = [];
  for await (const s of temporal.schedule.list()) {
    const m = /^schedule-([0-9a-f-]{36})$/.exec(s.scheduleId);
    if (m) ids.push(m[1]);
  }
  if (!ids.length) return 0;
  const known = new Set(await schedulesDb.existing(orm.em.fork(), ids));
  let deleted = 0;
  for (const id of ids) {
    if (known.has(id)) continue;
    await deleteTemporalSchedule(temporal, `schedule-${id}`);
    deleted++;
  }
  return deleted;
}

export async function deleteSchedule(repos: OwnedRepos, temporal: Client, id: string) {
  const s = await schedulesDb.get(repos, id);
  await deleteTemporalSchedule(temporal, s.temporalScheduleId);
  await schedulesDb.remove(repos, s);
}

/** Called once per firing (by the scheduledRunWorkflow activity): submits the run. */
export async function submitForSchedule(orm: Orm, engine: TaskEngine, scheduleId: string, firingId: string) {
  const em = orm.em.fork();
  const s = await schedulesDb.byId(em, scheduleId);
  if (!s) {
    // Its row is gone: this schedule must not fire again.
    await deleteTemporalSchedule(engine.temporal, `schedule-${scheduleId}`);
    return { taskId: null };
  }
  const repos = new OwnedRepos(em, s.userId);
  const { task } = await submitTask(repos, engine, {
    workflow_id: s.workflowId,
    device_id: s.deviceId,
    parameters: s.parameters,
    priority: s.priority,
    idempotency_key: `schedule:${firingId}`,
  });
  return { taskId: task.id };
}
