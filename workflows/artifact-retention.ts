// artifactRetentionWorkflow: what the retention Schedule starts (hourly): deletes the step
// artifacts older than ARTIFACT_RETENTION_DAYS, in batches, and ends. A firing that leaves
// some (a backlog of more than MAX_BATCHES batches) hands them to the next one.
import { proxyActivities } from '@temporalio/workflow';
import type { PersistenceActivities } from '../activities/types.ts';

export interface ArtifactRetentionInput {
  taskQueue: string;
}

/** Artifacts' files deleted per activity (each one transaction). */
export const RETENTION_BATCH = 500;
const MAX_BATCHES = 20;

export async function artifactRetentionWorkflow(input: ArtifactRetentionInput): Promise<{ deleted: number }> {
  const { deleteExpiredArtifacts } = proxyActivities<PersistenceActivities>({
    taskQueue: input.taskQueue,
    startToCloseTimeout: '2 minutes',
    retry: { initialInterval: '1s', maximumInterval: '1 minute', maximumAttempts: 10 },
  });
  let deleted = 0;
  for (let i = 0; i < MAX_BATCHES; i++) {
    const n = await deleteExpiredArtifacts({ limit: RETENTION_BATCH });
    deleted += n;
    if (n < RETENTION_BATCH) break;
  }
  return { deleted };
}
