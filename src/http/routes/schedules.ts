import { z } from 'zod';
import { PRIORITIES, Schedule } from '../../db/entities.ts';
import { cronProblem, MIN_INTERVAL_S } from '../../domain/schedule-spec.ts';
import * as schedulesDb from '../../db/schedules.ts';
import { createSchedule, deleteSchedule, describeSchedule, setSchedulePaused } from '../../domain/schedules.ts';
import type { TaskEngine } from '../../domain/tasks.ts';
import { envelope } from '../middleware.ts';
import { pageOf, pageQuery } from '../paging.ts';
import { PARAMETERS_BODY_BYTES, defineRoute, idParams } from '../route.ts';
import { deleted } from '../schemas/common.ts';
import { scheduleData, schedulePage } from '../schemas/schedules.ts';

export const scheduleBody = z.object({
  workflow_id: z.uuid(),
  device_id: z.uuid(),
  name: z.string().trim().min(1).max(255).optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  priority: z.enum(PRIORITIES).optional(),
  cron: z.string().trim().min(6).max(255).regex(/^[0-9A-Za-z*\/,\-?#@. ]+$/, 'a cron expression like "0 9 * * 1-5"')
    .superRefine((expr, ctx) => {
      const problem = cronProblem(expr);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }).optional(),
  interval_seconds: z.number().int().min(MIN_INTERVAL_S).max(366 * 86_400).optional(),
  timezone: z.string().regex(/^[A-Za-z_]+(\/[A-Za-z0-9_+-]+){0,2}$/, 'an IANA time zone like "Asia/Shanghai"').optional(),
  paused: z.boolean().optional(),
}).strict().refine((b) => (b.cron === undefined) !== (b.interval_seconds === undefined), {
  message: 'give exactly one of cron and interval_seconds',
  path: ['cron'],
});

function present(s: Schedule, live?: Awaited<ReturnType<typeof describeSchedule>>) {
  return {
    id: s.id, name: s.name ?? null, workflow_id: s.workflowId, device_id: s.deviceId, parameters: s.parameters,
    priority: s.priority, cron: s.cron ?? null, interval_seconds: s.intervalSeconds ?? null, timezone: s.timezone ?? null,
    paused: s.paused, temporal_schedule_id: s.temporalScheduleId, created_at: s.createdAt.toISOString(),
    ...(live !== undefined ? { next_runs: live?.next_runs ?? null, recent_runs: live?.recent_runs ?? null } : {}),
  };
}

export function scheduleRoutes(engine: TaskEngine) {
  const pauseRoute = (paused: boolean) =>
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'post', path: `/schedules/:id/${paused ? 'pause' : 'resume'}`, tag: 'schedules', auth: 'user',
      summary: paused ? 'Pause a schedule' : 'Resume a paused schedule', params: idParams,
      success: { status: 200, description: 'The schedule', data: scheduleData }, errors: [400, 401, 404, 503],
      async handler(ctx, { params }) {
        const s = await setSchedulePaused(ctx.state.repos, engine.temporal, params.id, paused);
        envelope(ctx, { schedule: present(s) });
      },
    });
  return [
    defineRoute<z.infer<typeof scheduleBody>>({
      method: 'post', path: '/schedules', tag: 'schedules', auth: 'user', maxBodyBytes: PARAMETERS_BODY_BYTES,
      summary: 'Run a workflow on a device on a cron or interval schedule (a Temporal Schedule)', body: scheduleBody,
      success: { status: 201, description: 'The new schedule with its next runs', data: scheduleData }, errors: [400, 401, 403, 404, 503],
      async handler(ctx, { body }) {
        const s = await createSchedule(ctx.state.repos, engine, body);
        envelope(ctx, { schedule: present(s, await describeSchedule(engine.temporal, s)) }, 201);
      },
    }),
    defineRoute<undefined, z.infer<typeof pageQuery>>({
      method: 'get', path: '/schedules', tag: 'schedules', auth: 'user', summary: 'List my schedules',
      query: pageQuery.strict(), success: { status: 200, description: 'A page of my schedules', data: schedulePage }, errors: [400, 401],
      async handler(ctx, { query }) {
        const [rows, total] = await schedulesDb.page(ctx.state.repos, (query.page - 1) * query.page_size, query.page_size);
        envelope(ctx, pageOf(rows.map((s) => present(s)), total, query));
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'get', path: '/schedules/:id', tag: 'schedules', auth: 'user',
      summary: 'A schedule with its next and recent runs', params: idParams,
      success: { status: 200, description: 'The schedule with its next and recent runs', data: scheduleData }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        const s = await schedulesDb.get(ctx.state.repos, params.id);
        envelope(ctx, { schedule: present(s, await describeSchedule(engine.temporal, s)) });
      },
    }),
    pauseRoute(true),
    pauseRoute(false),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'delete', path: '/schedules/:id', tag: 'schedules', auth: 'user', summary: 'Delete a schedule',
      params: idParams, success: { status: 200, description: 'Deleted (the Temporal schedule too)', data: deleted }, errors: [400, 401, 404, 503],
      async handler(ctx, { params }) {
        await deleteSchedule(ctx.state.repos, engine.temporal, params.id);
        envelope(ctx, { deleted: true });
      },
    }),
  ];
}
