// Device lanes (tables device_lanes, lane_requests; src/domain/device-lanes.ts says why): every
// change of a lane is one call of a PostgreSQL function of migration ..._device_lanes
// (lane_acquire, lane_release) that locks the lane's row, so two submissions, a release and a
// reconciler never hand one device to two runs.
import type { TaskStatus } from './entities.ts';
import { sql, type Db, type Sql } from './sql.ts';
import type { LaneTicket } from '../../workflows/api.ts';

export type LaneAnswer = 'granted' | 'queued' | 'queued_other';

export type Holder = {
  holder_task_id: string | null;
  holder_workflow_id: string | null;
  holder_notified: boolean;
};

/** Asks for the device (one row: `answer`, a LaneAnswer). Idempotent per task. */
export const acquire = (t: LaneTicket): Sql =>
  sql`select lane_acquire(${t.deviceId}::uuid, ${t.taskId}::uuid, ${t.workflowId}::varchar, ${t.priorityRank}::smallint, ${t.submittedAt}::bigint) as answer`;

/** Gives up the task's hold or place (the next run holds the device, not told yet). */
export const release = (deviceId: string, taskId: string): Sql => sql`select lane_release(${deviceId}::uuid, ${taskId}::uuid)`;

/** The device's holder as it is now. */
export const holder = (deviceId: string): Sql =>
  sql`select holder_task_id, holder_workflow_id, holder_notified from device_lanes where device_id = ${deviceId}`;

export async function readHolder(db: Db, deviceId: string): Promise<Holder | undefined> {
  return db.one<Holder>(holder(deviceId));
}

/** The status of a lane holder's task (undefined: the task is gone). */
export async function holderTaskStatus(db: Db, taskId: string): Promise<TaskStatus | undefined> {
  return (await db.one<{ status: TaskStatus }>(sql`select status from tasks where id = ${taskId}`))?.status;
}

/** Records that the holder was told, unless the device changed hands meanwhile. */
export async function markNotified(db: Db, deviceId: string, taskId: string): Promise<void> {
  await db.all(sql`update device_lanes set holder_notified = true where device_id = ${deviceId} and holder_task_id = ${taskId}`);
}

/** The device's lane in order: its holder first, then the queue. */
export async function lineUp(db: Db, deviceId: string): Promise<{ task_id: string; holder: boolean }[]> {
  return db.all(sql`select task_id, holder from (
      select holder_task_id as task_id, true as holder, 0 as rank, 0::bigint as submitted_at, 0::bigint as arrival
      from device_lanes where device_id = ${deviceId} and holder_task_id is not null
      union all
      select task_id, false, 4 - priority_rank, submitted_at, arrival from lane_requests where device_id = ${deviceId}
    ) lane order by holder desc, rank, submitted_at, arrival`);
}
