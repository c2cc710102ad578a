// Response of /stats/overview: the dashboard numbers.
import { z } from 'zod';
import { EXAMPLE, instant, uuid } from './common.ts';

const count = z.int().min(0);

const window = z.strictObject({
  since: instant.describe('Start of the window: local midnight in `tz`. The window holds the runs created since, and every unfinished run whenever created'),
  total: count,
  by_status: z.strictObject({ pending: count, running: count, paused: count, completed: count, failed: count, cancelled: count }),
  finished: count,
  success_rate: z.number().min(0).max(1).nullable().describe('completed / finished; null when nothing finished'),
  avg_duration_ms: z.number().min(0).nullable(),
});

const windowExample = (total: number, completed: number, failed: number) => ({
  since: '2026-03-01T23:00:00.000Z', total,
  by_status: { pending: 0, running: 0, paused: 0, completed, failed, cancelled: 0 },
  finished: completed + failed, success_rate: completed / (completed + failed), avg_duration_ms: 1250,
});

export const statsOverview = z.strictObject({
  tz: z.string(),
  generated_at: instant,
  today: window,
  last_7_days: window,
  last_30_days: window,
  devices: z.strictObject({ online: count, total: count }),
  days: z.array(z.strictObject({ date: z.iso.date(), total: count, completed: count, failed: count })).length(7),
  failures_by_code: z.array(z.strictObject({ code: z.string().describe('The run error\'s code (UNKNOWN when it had none)'), count }))
    .max(10).describe('Failed runs of the last 30 days by error code, most frequent first (at most 10 codes)'),
  workflows: z.array(z.strictObject({
    workflow_id: uuid,
    name: z.string(),
    total: count,
    completed: count,
    failed: count,
    success_rate: z.number().min(0).max(1).nullable().describe('completed / finished; null when nothing finished'),
  })).max(20).describe('Runs of the last 30 days per workflow, the busiest first (at most 20 workflows)'),
}).meta({
  examples: [{
    tz: 'Europe/Paris', generated_at: '2026-03-02T09:15:00.000Z',
    today: windowExample(4, 3, 1), last_7_days: windowExample(16, 15, 1), last_30_days: windowExample(60, 57, 3),
    devices: { online: 1, total: 2 },
    days: ['02-24', '02-25', '02-26', '02-27', '02-28', '03-01', '03-02'].map((d, i) => ({
      date: `2026-${d}`, total: i === 6 ? 4 : 2, completed: i === 6 ? 3 : 2, failed: i === 6 ? 1 : 0,
    })),
    failures_by_code: [{ code: 'STEP_TIMEOUT', count: 2 }, { code: 'DEVICE_OFFLINE', count: 1 }],
    workflows: [{ workflow_id: EXAMPLE.workflowId, name: 'Say hi', total: 60, completed: 57, failed: 3, success_rate: 0.95 }],
  }],
});
