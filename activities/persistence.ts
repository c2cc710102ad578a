// Persistence activities, run by the task workers: the PostgreSQL mirror of each run.
import type { Client } from '@temporalio/client';
import { deleteOlderThan } from '../src/db/artifacts.ts';
import type { Orm } from '../src/db/orm.ts';
import { DeviceLanes } from '../src/domain/device-lanes.ts';
import { applyRunEvents } from '../src/domain/run-mirror.ts';
import { submitForSchedule } from '../src/domain/schedules.ts';
import type { DeviceLocation, FinishRunInput, PersistenceActivities, RecordEventsInput } from './types.ts';
import * as devicesDb from '../src/db/devices.ts';
import type { AccountLimits } from '../src/domain/tasks.ts';

export interface PersistenceDeps {
  orm: Orm;
  temporal: Client;
  /** The task workers' queue (scheduled runs start their task there). */
  taskQueue: string;
  /** A device whose socket has not been seen for this long counts as offline. */
  presenceStaleMs: number;
  /** How long scheduled runs wait for an offline device. */
  offlineTimeoutMs: number;
  /** Scheduled runs count against their user's limits like any other. */
  limits: AccountLimits;
  /** Step artifacts older than this are deleted (artifactRetentionWorkflow). */
  artifactRetentionMs: number;
}

export function createPersistenceActivities({ orm, temporal, taskQueue, presenceStaleMs, offlineTimeoutMs, limits, artifactRetentionMs }: PersistenceDeps): PersistenceActivities {
  const lanes = new DeviceLanes(orm.em, temporal);
  return {
    async deleteExpiredArtifacts({ limit }: { limit: number }): Promise<number> {
      return deleteOlderThan(orm.em.fork(), new Date(Date.now() - artifactRetentionMs), limit);
    },

    async recordRunEvents({ taskId, events }: RecordEventsInput): Promise<void> {
      await applyRunEvents(orm, taskId, events);
    },

    async finishRun({ taskId, deviceId, events }: FinishRunInput) {
      // The last events and the lane's release in one transaction; then the next run is told.
      const released = await applyRunEvents(orm, taskId, events, DeviceLanes.releaseStatements(deviceId, taskId));
      await lanes.afterRelease(deviceId, released);
      return { events };
    },

    async locateDevice(deviceId: string): Promise<DeviceLocation> {
      const em = orm.em.fork();
      const device = await devicesDb.byId(em, deviceId);
      if (!device || !device.isOnline || !device.nodeId) return { online: false, nodeId: null };
      const seen = device.lastOnlineAt?.getTime() ?? 0;
      if (Date.now() - seen > presenceStaleMs) return { online: false, nodeId: null };
      return { online: true, nodeId: device.nodeId };
    },

    async acquireDeviceLane(ticket) {
      return lanes.acquire(ticket);
    },

    async submitScheduledTask({ scheduleId, firingId }) {
      return submitForSchedule(orm, { temporal, taskQueue, offlineTimeoutMs, limits }, scheduleId, firingId);
    },
  };
}
