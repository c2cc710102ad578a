import { z } from 'zod';
import { PRIORITIES, Task, TaskStep, TASK_STATUSES } from '../../db/entities.ts';
import * as tasksDb from '../../db/tasks.ts';
import {
  controlTask, decideApproval, isFinished, queuePosition, retryTask, submitTask, taskWithSteps,
  type ControlAction, type TaskEngine,
} from '../../domain/tasks.ts';
import { versionToRun } from '../../domain/workflow-versions.ts';
import { errors } from '../../errors.ts';
import { envelope } from '../middleware.ts';
import { presentStepProgress, presentTask } from '../presenters.ts';
import type { OwnedRepos } from '../../db/owned.ts';
import { PARAMETERS_BODY_BYTES, defineRoute, idParams } from '../route.ts';
import { deleted } from '../schemas/common.ts';
import {
  approvalData, controlData, eventList, retryData, taskData, taskDetailData, taskPage,
} from '../schemas/tasks.ts';
import { cursorParam, instantParam, keysetPage, pageQuery } from '../paging.ts';

export const taskBody = z.object({
  workflow_id: z.uuid(),
  device_id: z.uuid(),
  parameters: z.record(z.string(), z.unknown()).optional()
    .describe('Validated against the parameter schema of the version run, its defaults filled in (a 400 names each bad field)'),
  priority: z.enum(PRIORITIES).optional(),
  idempotency_key: z.string().trim().min(1).max(255).optional(),
  workflow_version: z.number().int().min(1).max(2_147_483_647).optional()
    .describe('Run this version of the workflow (GET /workflows/:id/versions) instead of its current one'),
}).strict();

export const taskListQuery = pageQuery.extend({
  cursor: cursorParam,
  status: z.enum(TASK_STATUSES).optional(),
  device_id: z.uuid().optional(),
  workflow_id: z.uuid().optional(),
  from: instantParam.optional(),
  to: instantParam.optional(),
}).strict();

export const controlBody = z.object({ reason: z.string().max(500).optional() }).strict();
export const statusBody = z.object({ status: z.enum(['paused', 'running', 'cancelled']), reason: z.string().max(500).optional() }).strict();
export const approvalBody = z.object({ approved: z.boolean(), comment: z.string().max(2000).optional() }).strict();
export const retryBody = z.object({ from_failed_step: z.boolean().optional() }).strict();
export const eventsQuery = z.object({
  after_seq: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(500),
}).strict();

export interface TaskRouteDeps {
  engine: TaskEngine;
  temporalUiUrl: string;
  namespace: string;
}

/** Where the request came from, recorded with control actions. */
function clientOf(ctx: { get(h: string): string }): string {
  return ctx.get('X-Client').slice(0, 50) || ctx.get('User-Agent').slice(0, 50) || 'api';
}

export function taskRoutes({ engine, temporalUiUrl, namespace }: TaskRouteDeps) {
  const present = (t: Task, names: tasksDb.TaskNames, steps?: TaskStep[]) =>
    presentTask(t, names, { steps, temporalUiUrl, namespace });
  /** Names of a task's workflow and device: from the submission when it has them, else read. */
  const namesOf = (repos: OwnedRepos, t: Task, known?: { workflow: string; device: string }): Promise<tasksDb.TaskNames> | tasksDb.TaskNames =>
    known
      ? { workflows: new Map([[t.workflowId, known.workflow]]), devices: new Map([[t.deviceId, known.device]]) }
      : tasksDb.namesFor(repos, [t]);

  const control = (action: ControlAction) =>
    defineRoute<z.infer<typeof controlBody>, undefined, z.infer<typeof idParams>>({
      method: 'post', path: `/tasks/:id/${action}`, tag: 'tasks', auth: 'user',
      summary: `${action[0].toUpperCase()}${action.slice(1)} a run`, params: idParams, body: controlBody,
      success: { status: 202, description: 'Accepted: the run\'s status after the request', data: controlData }, errors: [400, 401, 404, 409, 503],
      async handler(ctx, { params, body }) {
        const { task, status } = await controlTask(ctx.state.repos, engine.temporal, params.id, action, {
          by: ctx.state.userId, client: clientOf(ctx), reason: body.reason,
        });
        envelope(ctx, { task_id: task.id, status, action }, 202, 'accepted');
      },
    });

  return [
    defineRoute<z.infer<typeof taskBody>>({
      method: 'post', path: '/tasks', tag: 'tasks', auth: 'user', maxBodyBytes: PARAMETERS_BODY_BYTES,
      summary: 'Start a run of a workflow on a device (same idempotency_key: same task)', body: taskBody,
      success: { status: 201, also: [200], description: 'The new task; 200 with the existing one when the idempotency key matched', data: taskData },
      errors: [400, 401, 404, 409, 503],
      async handler(ctx, { body }) {
        const { workflow_version: n, ...input } = body;
        const version = n === undefined ? undefined : await versionToRun(ctx.state.repos, body.workflow_id, n);
        const { task, created, names } = await submitTask(ctx.state.repos, engine, input, { version });
        envelope(ctx, { task: present(task, await namesOf(ctx.state.repos, task, names)) }, created ? 201 : 200);
      },
    }),
    defineRoute<undefined, z.infer<typeof taskListQuery>>({
      method: 'get', path: '/tasks', tag: 'tasks', auth: 'user', summary: 'List my tasks, newest first',
      query: taskListQuery, success: { status: 200, description: 'A page of my tasks', data: taskPage }, errors: [400, 401],
      async handler(ctx, { query }) {
        const where = tasksDb.where({
          status: query.status, deviceId: query.device_id, workflowId: query.workflow_id,
          from: query.from ? new Date(query.from) : undefined, to: query.to ? new Date(query.to) : undefined,
        });
        const page = await keysetPage(ctx.state.repos, Task, where, query, (t: Task) => t);
        const names = await tasksDb.namesFor(ctx.state.repos, page.list);
        envelope(ctx, { ...page, list: page.list.map((t) => present(t, names)) });
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'get', path: '/tasks/:id', tag: 'tasks', auth: 'user',
      summary: 'A task with its steps, current node, progress, result and error', params: idParams,
      success: { status: 200, description: 'The task with its steps', data: taskDetailData }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        const { task, steps, names } = await taskWithSteps(ctx.state.repos, params.id);
        const position = await queuePosition(() => ctx.state.em, engine.temporal, task);
        envelope(ctx, { task: { ...present(task, names, steps), queue_position: position, step_progress: presentStepProgress(task, steps) } });
      },
    }),
    control('pause'),
    control('resume'),
    control('cancel'),
    defineRoute<z.infer<typeof statusBody>, undefined, z.infer<typeof idParams>>({
      method: 'put', path: '/tasks/:id/status', tag: 'tasks', auth: 'user',
      summary: 'Seed compatibility: paused | running | cancelled map to pause, resume, cancel',
      params: idParams, body: statusBody, success: { status: 202, description: 'Accepted: the run\'s status after the request', data: controlData },
      errors: [400, 401, 404, 409, 503],
      async handler(ctx, { params, body }) {
        const action: ControlAction = body.status === 'paused' ? 'pause' : body.status === 'running' ? 'resume' : 'cancel';
        const { task, status } = await controlTask(ctx.state.repos, engine.temporal, params.id, action, {
          by: ctx.state.userId, client: clientOf(ctx), reason: body.reason,
        });
        envelope(ctx, { task_id: task.id, status, action }, 202, 'accepted');
      },
    }),
    defineRoute<z.infer<typeof approvalBody>, undefined, z.infer<typeof idParams>>({
      method: 'post', path: '/tasks/:id/approval', tag: 'tasks', auth: 'user',
      summary: 'Approve or reject the run waiting at an approval node', params: idParams, body: approvalBody,
      success: { status: 202, description: 'Accepted: the decision is sent to the run', data: approvalData }, errors: [400, 401, 404, 409],
      async handler(ctx, { params, body }) {
        const task = await decideApproval(ctx.state.repos, engine.temporal, params.id, {
          approved: body.approved, comment: body.comment, by: ctx.state.userId, client: clientOf(ctx),
        });
        envelope(ctx, { task_id: task.id, approved: body.approved }, 202, 'accepted');
      },
    }),
    defineRoute<z.infer<typeof retryBody>, undefined, z.infer<typeof idParams>>({
      method: 'post', path: '/tasks/:id/retry', tag: 'tasks', auth: 'user',
      summary: 'A new task from a failed or cancelled one, optionally from the failed step with earlier outputs kept',
      params: idParams, body: retryBody, success: { status: 201, description: 'The new task', data: retryData }, errors: [400, 401, 404, 409, 503],
      async handler(ctx, { params, body }) {
        const { task, names } = await retryTask(ctx.state.repos, engine, params.id, body.from_failed_step ?? false);
        envelope(ctx, { task: present(task, await namesOf(ctx.state.repos, task, names)), retry_of: params.id }, 201);
      },
    }),
    defineRoute<undefined, z.infer<typeof eventsQuery>, z.infer<typeof idParams>>({
      method: 'get', path: '/tasks/:id/events', tag: 'tasks', auth: 'user',
      summary: 'The run\'s durable events so far, paged by after_seq', params: idParams, query: eventsQuery,
      success: { status: 200, description: 'The events after after_seq, oldest first', data: eventList }, errors: [400, 401, 404],
      async handler(ctx, { params, query }) {
        const rows = await tasksDb.eventsAfter(ctx.state.repos, params.id, query.after_seq, query.limit);
        if (!rows) throw errors.notFound('task');
        const list = rows.map((e) => ({ task_id: e.taskId, seq: e.seq, kind: e.kind, at: e.at.getTime(), data: e.data }));
        envelope(ctx, { list, next_after_seq: list.length ? list[list.length - 1].seq : query.after_seq });
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'delete', path: '/tasks/:id', tag: 'tasks', auth: 'user', summary: 'Delete a finished task',
      params: idParams, success: { status: 200, description: 'Deleted', data: deleted }, errors: [400, 401, 404, 409],
      async handler(ctx, { params }) {
        const task = await tasksDb.get(ctx.state.repos, params.id);
        if (!isFinished(task.status)) throw errors.conflict(`cannot delete a task that is ${task.status}`, { status: task.status });
        await tasksDb.remove(ctx.state.repos, task.id);
        envelope(ctx, { deleted: true });
      },
    }),
  ];
}
