// Persistence activities, run by the task workers: the PostgreSQL mirror of each run.
import { LockMode } from '@mikro-orm/core';
import type { Client } from '@temporalio/client';
import {
  DEVICE_LANE_WORKFLOW,
  laneAcquireSignal,
  laneReleaseSignal,
  laneWorkflowId,
} from '../workflows/api.ts';
import type { deviceLaneWorkflow } from '../workflows/device-lane.ts';
import type { Orm } from '../src/db/orm.ts';
import { Device, Task, TaskStep } from '../src/db/entities.ts';
import { applyEvents } from '../src/domain/task-mirror.ts';
import type { DeviceLocation, LaneCall, PersistenceActivities, RecordEventsInput } from './types.ts';

export interface PersistenceDeps {
  orm: Orm;
  temporal: Client;
  /** The task workers' queue, where lanes run too. */
  taskQueue: string;
  /** A device whose socket has not been seen for this long counts as offline. */
  presenceStaleMs: number;
}

export function createPersistenceActivities({ orm, temporal, taskQueue, presenceStaleMs }: PersistenceDeps): PersistenceActivities {
  return {
    async recordRunEvents({ taskId, events }: RecordEventsInput): Promise<void> {
      const em = orm.em.fork();
      await em.transactional(async (tx) => {
        // Row lock: one writer per task, so retried or concurrent activities apply events once.
        const task = await tx.findOne(Task, { id: taskId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
        if (!task) return; // the task was deleted; nothing to mirror
        const steps = applyEvents(task, events);
        for (const ev of events) {
          await tx.execute(
            `insert into task_events (task_id, seq, kind, at, data) values (?, ?, ?, ?, ?)
             on conflict (task_id, seq) do nothing`,
            [taskId, ev.seq, ev.kind, new Date(ev.at), JSON.stringify(ev.data)],
            'run',
          );
        }
        for (const s of steps) {
          const existing = await tx.findOne(TaskStep, { key: s.key });
          if (!existing) {
            tx.create(TaskStep, {
              id: crypto.randomUUID(), taskId, key: s.key, nodeId: s.nodeId, nodeType: s.nodeType || 'unknown',
              name: s.name, attempt: s.attempt, status: s.status, output: s.output ?? null,
              error: s.error ?? null, startedAt: s.at, finishedAt: s.status === 'running' ? null : s.at,
            });
          } else {
            existing.status = s.status;
            if (s.status === 'running') {
              existing.finishedAt = null;
            } else {
              existing.finishedAt = s.at;
              existing.output = s.output ?? null;
              existing.error = s.error ?? null;
            }
          }
        }
        const last = events[events.length - 1];
        if (last && (task.status === 'cancelled' || task.status === 'failed') && task.finishedAt) {
          // A step still marked running when the run ended was aborted with it.
          await tx.nativeUpdate(
            TaskStep,
            { taskId, status: 'running' },
            { status: task.status === 'cancelled' ? 'cancelled' : 'failed', finishedAt: task.finishedAt },
          );
        }
      });
    },

    async locateDevice(deviceId: string): Promise<DeviceLocation> {
      const em = orm.em.fork();
      const device = await em.findOne(Device, { id: deviceId });
      if (!device || !device.isOnline || !device.nodeId) return { online: false, nodeId: null };
      const seen = device.lastOnlineAt?.getTime() ?? 0;
      if (Date.now() - seen > presenceStaleMs) return { online: false, nodeId: null };
      return { online: true, nodeId: device.nodeId };
    },

    async acquireLane({ deviceId, ...request }: LaneCall): Promise<void> {
      await temporal.workflow.signalWithStart<typeof deviceLaneWorkflow, [typeof request]>(DEVICE_LANE_WORKFLOW, {
        workflowId: laneWorkflowId(deviceId),
        taskQueue,
        args: [{ deviceId }],
        signal: laneAcquireSignal,
        signalArgs: [request],
        staticSummary: `device lane of ${deviceId}`,
      });
    },

    async releaseLane({ deviceId, taskId }): Promise<void> {
      try {
        await temporal.workflow.getHandle(laneWorkflowId(deviceId)).signal(laneReleaseSignal, { taskId });
      } catch (err) {
        // No lane running: nothing is held.
        if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
      }
    },
  };
}
