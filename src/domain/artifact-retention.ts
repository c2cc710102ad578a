// Retention of step artifacts: a Temporal Schedule per task queue starts
// artifactRetentionWorkflow every hour, which deletes the artifacts older than
// ARTIFACT_RETENTION_DAYS. A Schedule rather than a timer in each node: it fires once however
// many workers run, survives restarts, and shows (and can be triggered or paused) in Temporal's UI.
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { artifactRetentionWorkflow } from '../../workflows/artifact-retention.ts';

export const RETENTION_EVERY = '1h';

/** The retention Schedule's id for the task workers of `taskQueue`. */
export function retentionScheduleId(taskQueue: string): string {
  return `artifact-retention-${taskQueue}`;
}

/** Creates the retention Schedule unless it exists (every task worker asks at start). */
export async function ensureRetentionSchedule(temporal: Client, taskQueue: string): Promise<void> {
  try {
    await temporal.schedule.create<typeof artifactRetentionWorkflow>({
      scheduleId: retentionScheduleId(taskQueue),
      spec: { intervals: [{ every: RETENTION_EVERY }] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      action: {
        type: 'startWorkflow',
        workflowType: 'artifactRetentionWorkflow',
        workflowId: `${retentionScheduleId(taskQueue)}-run`,
        taskQueue,
        args: [{ taskQueue }],
      },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
}
