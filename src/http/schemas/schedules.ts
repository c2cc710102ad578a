// Responses of /schedules: the schedule row, with what Temporal says of it when asked for one.
import { z } from 'zod';
import { PRIORITIES } from '../../db/entities.ts';
import { EXAMPLE, instant, jsonObject, pageOf, uuid } from './common.ts';

const fields = {
  id: uuid,
  name: z.string().nullable(),
  workflow_id: uuid,
  device_id: uuid,
  parameters: jsonObject,
  priority: z.enum(PRIORITIES),
  cron: z.string().nullable(),
  interval_seconds: z.int().min(1).nullable(),
  timezone: z.string().nullable(),
  paused: z.boolean(),
  temporal_schedule_id: z.string(),
  created_at: instant,
};
const example = {
  id: EXAMPLE.scheduleId, name: 'Weekday greeting', workflow_id: EXAMPLE.workflowId, device_id: EXAMPLE.deviceId,
  parameters: {}, priority: 'medium', cron: '0 9 * * 1-5', interval_seconds: null, timezone: 'Europe/Paris', paused: false,
  temporal_schedule_id: `schedule-${EXAMPLE.scheduleId}`, created_at: EXAMPLE.at,
};

export const Schedule = z.strictObject({
  ...fields,
  next_runs: z.array(instant).nullable().optional().describe('Only on one schedule; null when Temporal did not answer'),
  recent_runs: z.array(z.strictObject({ scheduled_at: instant, workflow_id: z.string() })).nullable().optional(),
}).meta({
  id: 'Schedule',
  examples: [{ ...example, next_runs: ['2026-03-03T08:00:00.000Z'], recent_runs: [] }],
});

export const scheduleData = z.strictObject({ schedule: Schedule });
export const schedulePage = pageOf(Schedule);
