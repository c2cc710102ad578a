// scheduledRunWorkflow: what a Temporal Schedule starts each time it fires. It submits one
// task (a taskRunWorkflow of its own, with a task row) and ends. The schedule's workflow id
// (schedule id + fire time) is the idempotency key, so a retried action never runs twice.
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { PersistenceActivities } from '../activities/types.ts';

export interface ScheduledRunInput {
  scheduleId: string;
  taskQueue: string;
}

export async function scheduledRunWorkflow(input: ScheduledRunInput): Promise<{ taskId: string | null }> {
  const { submitScheduledTask } = proxyActivities<PersistenceActivities>({
    taskQueue: input.taskQueue,
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 20 },
  });
  return submitScheduledTask({ scheduleId: input.scheduleId, firingId: workflowInfo().workflowId });
}
