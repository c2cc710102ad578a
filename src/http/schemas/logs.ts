// Responses of /logs and /tasks/{id}/logs.
import { z } from 'zod';
import { LOG_CATEGORIES, LOG_LEVELS } from '../../db/entities.ts';
import { EXAMPLE, instant, json, pageOf, uuid } from './common.ts';

export const Log = z.strictObject({
  id: uuid,
  level: z.enum(LOG_LEVELS),
  category: z.enum(LOG_CATEGORIES),
  message: z.string(),
  details: json,
  task_id: uuid.nullable(),
  device_id: uuid.nullable(),
  created_at: instant,
}).meta({
  id: 'Log',
  examples: [{
    id: EXAMPLE.logId, level: 'info', category: 'task', message: 'step s1 completed', details: { step_id: 's1' },
    task_id: EXAMPLE.taskId, device_id: EXAMPLE.deviceId, created_at: EXAMPLE.at,
  }],
});

export const logData = z.strictObject({ log: Log });
export const logPage = pageOf(Log);
