// Device lanes seen from outside the workflow: ask for a place in the queue, release a task's
// hold or place.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import {
  DEVICE_LANE_WORKFLOW,
  laneAcquireSignal,
  laneReleaseSignal,
  laneWorkflowId,
  type LaneRequest,
} from '../../workflows/api.ts';
import type { deviceLaneWorkflow } from '../../workflows/device-lane.ts';

export type LaneAsk = Omit<LaneRequest, 'arrival' | 'notified'>;

/** Queues a run on its device's lane, starting the lane if the device has none yet. Idempotent per task. */
export async function requestLane(temporal: Client, taskQueue: string, deviceId: string, request: LaneAsk): Promise<void> {
  await temporal.workflow.signalWithStart<typeof deviceLaneWorkflow, [LaneAsk]>(DEVICE_LANE_WORKFLOW, {
    workflowId: laneWorkflowId(deviceId),
    taskQueue,
    args: [{ deviceId }],
    signal: laneAcquireSignal,
    signalArgs: [request],
    staticSummary: `device lane of ${deviceId}`,
  });
}

export async function releaseLane(temporal: Client, deviceId: string, taskId: string): Promise<void> {
  try {
    await temporal.workflow.getHandle(laneWorkflowId(deviceId)).signal(laneReleaseSignal, { taskId });
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err; // no lane: nothing is held
  }
}
