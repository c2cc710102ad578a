// Device lanes in PostgreSQL: a PC runs one automation at a time. `device_lanes` says which run
// holds each device, `lane_requests` holds the runs waiting for it, in priority order (high,
// medium, low), then by submission time, then arrival.
//
// Why here and not in a lane workflow (docs/design.md, "Device lanes"): a free device is granted
// in the request that submits the run, so the run starts its first step at once; a lane
// workflow cost three workflow tasks and two signals per run. The releasing run's activity
// hands the device to the next run and signals it (`laneGranted`), as the lane workflow did.
//
// Every change of a lane happens in one transaction that locks its row, so two submissions, a
// release and a reconciler never hand one device to two runs.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { EntityManager } from '@mikro-orm/postgresql';
import { FINISHED_STATUSES, type TaskStatus } from '../db/entities.ts';
import { laneGrantedSignal, type LaneTicket } from '../../workflows/api.ts';

export type { LaneTicket };

interface Holder {
  holder_task_id: string | null;
  holder_workflow_id: string | null;
  holder_notified: boolean;
}

/** Most runs one release walks past when their workflows are gone. */
const MAX_GONE_HOLDERS = 100;

/** Gives the device to the first waiting run, if any; the lane row is locked. */
async function grantNext(tx: EntityManager, deviceId: string): Promise<string | null> {
  const rows = await tx.execute<{ holder_task_id: string }[]>(
    `with next as (
       delete from lane_requests where task_id = (
         select task_id from lane_requests where device_id = ?
         order by priority_rank desc, submitted_at, arrival limit 1)
       returning task_id, workflow_id)
     update device_lanes l set holder_task_id = next.task_id, holder_workflow_id = next.workflow_id,
       holder_notified = false, granted_at = now()
     from next where l.device_id = ? returning l.holder_task_id`,
    [deviceId, deviceId],
  );
  return rows[0]?.holder_task_id ?? null;
}

export class DeviceLanes {
  private readonly em: EntityManager;
  private readonly temporal: Client;

  constructor(em: EntityManager, temporal: Client) {
    this.em = em;
    this.temporal = temporal;
  }

  /**
   * Asks for the device. `granted`: the run holds it now (and knows: no signal follows);
   * otherwise it waits in the queue and gets `laneGranted` when its turn comes. Idempotent per task.
   */
  async acquire(t: LaneTicket): Promise<{ granted: boolean }> {
    const { granted, other } = await this.em.fork().transactional(async (tx) => {
      await tx.execute('insert into device_lanes (device_id) values (?) on conflict do nothing', [t.deviceId]);
      const [lane] = await tx.execute<Holder[]>(
        'select holder_task_id, holder_workflow_id, holder_notified from device_lanes where device_id = ? for update',
        [t.deviceId],
      );
      if (lane.holder_task_id !== t.taskId) {
        await tx.execute(
          `insert into lane_requests (task_id, device_id, workflow_id, priority_rank, submitted_at)
           values (?, ?, ?, ?, ?) on conflict (task_id) do nothing`,
          [t.taskId, t.deviceId, t.workflowId, t.priorityRank, t.submittedAt],
        );
        if (lane.holder_task_id !== null) return { granted: false, other: false };
        const holder = await grantNext(tx, t.deviceId);
        if (holder !== t.taskId) return { granted: false, other: holder !== null };
      }
      await tx.execute('update device_lanes set holder_notified = true where device_id = ? and holder_task_id = ?', [t.deviceId, t.taskId]);
      return { granted: true, other: false };
    });
    // A free device went to a run that waited longer (or ranks higher): tell it.
    if (other) await this.notifyHolder(t.deviceId);
    return { granted };
  }

  /** Gives up the task's hold or place; the next run gets the device and is told. Idempotent. */
  async release(deviceId: string, taskId: string): Promise<void> {
    await this.giveUp(deviceId, taskId);
    await this.notifyHolder(deviceId);
  }

  private async giveUp(deviceId: string, taskId: string): Promise<void> {
    await this.em.fork().transactional(async (tx) => {
      await tx.execute('delete from lane_requests where task_id = ?', [taskId]);
      const [lane] = await tx.execute<Holder[]>(
        'select holder_task_id from device_lanes where device_id = ? for update', [deviceId]);
      if (lane?.holder_task_id !== taskId) return;
      await tx.execute(
        'update device_lanes set holder_task_id = null, holder_workflow_id = null, holder_notified = false, granted_at = null where device_id = ?',
        [deviceId]);
      await grantNext(tx, deviceId);
    });
  }

  /**
   * Signals the holder that has not been told yet. A holder whose run is over (terminated,
   * deleted) gives the device up to the next; one whose workflow has not started yet is left:
   * the run asks itself. Throws when Temporal cannot be reached (the calling activity retries).
   */
  async notifyHolder(deviceId: string): Promise<void> {
    for (let i = 0; i < MAX_GONE_HOLDERS; i++) {
      const [lane] = await this.em.fork().execute<Holder[]>(
        'select holder_task_id, holder_workflow_id, holder_notified from device_lanes where device_id = ?', [deviceId]);
      if (!lane?.holder_task_id || lane.holder_notified) return;
      try {
        await this.temporal.workflow.getHandle(lane.holder_workflow_id!).signal(laneGrantedSignal, { deviceId });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        const [task] = await this.em.fork().execute<{ status: TaskStatus }[]>(
          'select status from tasks where id = ?', [lane.holder_task_id]);
        if (task && !FINISHED_STATUSES.includes(task.status)) return;
        await this.giveUp(deviceId, lane.holder_task_id);
        continue;
      }
      await this.em.fork().execute(
        'update device_lanes set holder_notified = true where device_id = ? and holder_task_id = ?',
        [deviceId, lane.holder_task_id]);
      return;
    }
  }

  /** 0: the task holds its device; n: n-th in the queue; null: neither (not in a table lane). */
  async position(deviceId: string, taskId: string): Promise<number | null> {
    const rows = await this.em.fork().execute<{ task_id: string; holder: boolean }[]>(
      `select task_id, holder from (
         select holder_task_id as task_id, true as holder, 0 as rank, 0::bigint as submitted_at, 0::bigint as arrival
         from device_lanes where device_id = ? and holder_task_id is not null
         union all
         select task_id, false, 4 - priority_rank, submitted_at, arrival from lane_requests where device_id = ?
       ) lane order by holder desc, rank, submitted_at, arrival`,
      [deviceId, deviceId],
    );
    const i = rows.findIndex((r) => r.task_id === taskId);
    if (i < 0) return null;
    return rows[0].holder ? i : i + 1;
  }
}
