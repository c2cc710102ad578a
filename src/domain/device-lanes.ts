// Device lanes in PostgreSQL: a PC runs one automation at a time. `device_lanes` says which run
// holds each device, `lane_requests` holds the runs waiting for it, in priority order (high,
// medium, low), then by submission time, then arrival.
//
// Why here and not in a lane workflow (docs/design.md, "Device lanes"): a free device is granted
// in the request that submits the run, so the run starts its first step at once; a lane
// workflow costs three workflow tasks and two signals per run. The releasing run's last write
// hands the device to the next run and signals it (`laneGranted`).
//
// Every change of a lane is one call of a PostgreSQL function (src/db/lanes.ts) that locks the
// lane's row for one round trip only.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { EntityManager } from '@mikro-orm/postgresql';
import { FINISHED_STATUSES } from '../db/entities.ts';
import { dbOf, type Row, type Sql } from '../db/sql.ts';
import * as lanesDb from '../db/lanes.ts';
import type { Holder, LaneAnswer } from '../db/lanes.ts';
import { laneGrantedSignal, type LaneTicket } from '../../workflows/api.ts';

export type { LaneTicket };

/** Most runs one release walks past when their workflows are gone. */
const MAX_GONE_HOLDERS = 100;

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
    const row = await (await dbOf(this.em)).one(lanesDb.acquire(t));
    return this.afterAcquire(t.deviceId, row);
  }

  async afterAcquire(deviceId: string, row: Row | undefined): Promise<{ granted: boolean }> {
    const answer = row?.answer as LaneAnswer | undefined;
    if (!answer) throw new Error('lane_acquire gave no answer');
    // A free device went to a run that waited longer (or ranks higher): tell it.
    if (answer === 'queued_other') await this.notifyHolder(deviceId);
    return { granted: answer === 'granted' };
  }

  /** Gives up the task's hold or place; the next run gets the device and is told. Idempotent. */
  async release(deviceId: string, taskId: string): Promise<void> {
    await this.giveUp(deviceId, taskId);
    await this.notifyHolder(deviceId);
  }

  /**
   * `release` as statements for a caller's transaction (the run's last mirror write), so that the
   * release costs no round trip of its own; pass their rows to `afterRelease`.
   */
  static releaseStatements(deviceId: string, taskId: string): Sql[] {
    return [lanesDb.release(deviceId, taskId), lanesDb.holder(deviceId)];
  }

  /** Tells the next holder, after `releaseStatements` committed. */
  async afterRelease(deviceId: string, rows: Row[][]): Promise<void> {
    await this.notifyHolder(deviceId, (rows[1]?.[0] ?? null) as Holder | null);
  }

  private async giveUp(deviceId: string, taskId: string): Promise<void> {
    await (await dbOf(this.em)).all(lanesDb.release(deviceId, taskId));
  }

  /**
   * Signals the holder that has not been told yet. A holder whose run is over (terminated,
   * deleted) gives the device up to the next; one whose workflow has not started yet is left:
   * the run asks itself. Throws when Temporal cannot be reached (the calling activity retries).
   */
  async notifyHolder(deviceId: string, known?: Holder | null): Promise<void> {
    const db = await dbOf(this.em);
    for (let i = 0; i < MAX_GONE_HOLDERS; i++) {
      // The lane as the caller just read it (first time round only), else as it is now.
      const lane = i === 0 && known !== undefined ? known : await lanesDb.readHolder(db, deviceId);
      if (!lane?.holder_task_id || lane.holder_notified) return;
      try {
        await this.temporal.workflow.getHandle(lane.holder_workflow_id!).signal(laneGrantedSignal, { deviceId });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        const status = await lanesDb.holderTaskStatus(db, lane.holder_task_id);
        if (status && !FINISHED_STATUSES.includes(status)) return;
        await this.giveUp(deviceId, lane.holder_task_id);
        continue;
      }
      await lanesDb.markNotified(db, deviceId, lane.holder_task_id);
      return;
    }
  }

  /** 0: the task holds its device; n: n-th in the queue; null: neither (not in a table lane). */
  async position(deviceId: string, taskId: string): Promise<number | null> {
    const rows = await lanesDb.lineUp(await dbOf(this.em), deviceId);
    const i = rows.findIndex((r) => r.task_id === taskId);
    if (i < 0) return null;
    return rows[0].holder ? i : i + 1;
  }
}
