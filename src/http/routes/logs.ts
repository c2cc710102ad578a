import type { Context } from 'koa';
import { z } from 'zod';
import { LOG_CATEGORIES, LOG_LEVELS, Log } from '../../db/entities.ts';
import * as logsDb from '../../db/logs.ts';
import * as tasksDb from '../../db/tasks.ts';
import { insertLog, MAX_LOG_MESSAGE, presentLog } from '../../domain/logs.ts';
import { envelope } from '../middleware.ts';
import { cursorParam, instantParam, keysetPage, pageQuery } from '../paging.ts';
import { defineRoute, idParams } from '../route.ts';
import { logData, logPage } from '../schemas/logs.ts';

export const logBody = z.object({
  level: z.enum(LOG_LEVELS),
  category: z.enum(LOG_CATEGORIES).optional(),
  message: z.string().trim().min(1).max(MAX_LOG_MESSAGE),
  details: z.record(z.string(), z.unknown()).nullable().optional(),
  task_id: z.uuid().optional(),
}).strict();

const LEVEL_LIST = new RegExp(`^(${LOG_LEVELS.join('|')})(,(${LOG_LEVELS.join('|')}))*$`);

export const logListQuery = pageQuery.extend({
  cursor: cursorParam,
  level: z.string().max(100).regex(LEVEL_LIST, `one level or a comma-separated list of ${LOG_LEVELS.join(', ')}`).optional(),
  category: z.enum(LOG_CATEGORIES).optional(),
  task_id: z.uuid().optional(),
  device_id: z.uuid().optional(),
  from: instantParam.optional(),
  to: instantParam.optional(),
  q: z.string().min(1).max(200).refine((q) => !q.includes('\u0000'), { message: 'must not contain NUL' }).optional(),
}).strict();

export const taskLogListQuery = logListQuery.omit({ task_id: true }).strict();

type ListQuery = z.infer<typeof logListQuery>;

/** One page of the user's logs, newest first: page/page_size or the keyset cursor. */
async function listLogs(ctx: Context, query: ListQuery, taskId?: string): Promise<void> {
  const where = logsDb.where({
    levels: query.level?.split(','), category: query.category, taskId: taskId ?? query.task_id, deviceId: query.device_id,
    from: query.from ? new Date(query.from) : undefined, to: query.to ? new Date(query.to) : undefined, messageLike: query.q,
  });
  envelope(ctx, await keysetPage(ctx.state.repos, Log, where, query, presentLog));
}

export function logRoutes() {
  return [
    defineRoute<z.infer<typeof logBody>>({
      method: 'post', path: '/logs', tag: 'logs', auth: 'user',
      summary: 'Report a log (optionally about one of my tasks); secret-looking keys in details are dropped',
      body: logBody, success: { status: 201, description: 'The stored log', data: logData }, errors: [400, 401, 404],
      async handler(ctx, { body }) {
        if (body.task_id) await tasksDb.get(ctx.state.repos, body.task_id);
        const log = await insertLog(ctx.state.em, {
          userId: ctx.state.userId,
          taskId: body.task_id ?? null,
          level: body.level,
          category: body.category ?? (body.task_id ? 'task' : 'system'),
          message: body.message,
          details: body.details ?? null,
        });
        envelope(ctx, { log: presentLog(log) }, 201);
      },
    }),
    defineRoute<undefined, z.infer<typeof logListQuery>>({
      method: 'get', path: '/logs', tag: 'logs', auth: 'user',
      summary: 'List my logs, newest first (filters level, category, task_id, device_id, from, to, q; page or cursor)',
      query: logListQuery, success: { status: 200, description: 'A page of my logs', data: logPage }, errors: [400, 401],
      async handler(ctx, { query }) {
        await listLogs(ctx, query);
      },
    }),
    defineRoute<undefined, z.infer<typeof taskLogListQuery>, z.infer<typeof idParams>>({
      method: 'get', path: '/tasks/:id/logs', tag: 'logs', auth: 'user',
      summary: 'The logs of one of my tasks, newest first (same filters and paging as GET /logs)',
      params: idParams, query: taskLogListQuery, success: { status: 200, description: 'A page of the task\'s logs', data: logPage }, errors: [400, 401, 404],
      async handler(ctx, { params, query }) {
        const task = await tasksDb.get(ctx.state.repos, params.id);
        await listLogs(ctx, query, task.id);
      },
    }),
  ];
}
