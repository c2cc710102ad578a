// Device lanes seen from outside the workflow: release a task's hold or place in the queue.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { laneReleaseSignal, laneWorkflowId } from '../../workflows/api.ts';

export async function releaseLane(temporal: Client, deviceId: string, taskId: string): Promise<void> {
  try {
    await temporal.workflow.getHandle(laneWorkflowId(deviceId)).signal(laneReleaseSignal, { taskId });
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err; // no lane: nothing is held
  }
}
