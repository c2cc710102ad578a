// Responses of /tasks/{id}/artifacts: what devices attached to the steps of a run (their bytes
// come from .../content and .../thumbnail).
import { z } from 'zod';
import { EXAMPLE, instant, uuid } from './common.ts';

export const StepArtifact = z.strictObject({
  id: uuid,
  task_id: uuid,
  step_id: z.string(),
  attempt: z.int().min(1),
  kind: z.enum(['screenshot', 'file']),
  name: z.string(),
  content_type: z.string().describe('Detected from the content, not taken from the device'),
  size_bytes: z.int().min(0),
  width: z.int().nullable().describe('Images: pixels'),
  height: z.int().nullable(),
  has_thumbnail: z.boolean().describe('Images have a WebP thumbnail (at most 320 px) at .../thumbnail'),
  created_at: instant,
}).meta({
  id: 'StepArtifact',
  examples: [{
    id: EXAMPLE.fileId, task_id: EXAMPLE.taskId, step_id: 's1', attempt: 1, kind: 'screenshot', name: 'screen-s1.png',
    content_type: 'image/png', size_bytes: 48213, width: 1280, height: 800, has_thumbnail: true, created_at: EXAMPLE.at,
  }],
});

export const artifactList = z.strictObject({ list: z.array(StepArtifact), total: z.int().min(0) });
