import { z } from 'zod';
import { createWorkflow, deleteWorkflow, getWorkflow, updateWorkflow } from '../../domain/workflows.ts';
import * as workflowsDb from '../../db/workflows.ts';
import type { TaskEngine } from '../../domain/tasks.ts';
import { envelope } from '../middleware.ts';
import { presentExport, presentWorkflow } from '../presenters.ts';
import { MAX_BODY_BYTES, defineRoute, idParams } from '../route.ts';
import { deleted } from '../schemas/common.ts';
import { workflowData, workflowExport, workflowPage } from '../schemas/workflows.ts';
import { pageQuery, pageOf } from '../paging.ts';

const tags = z.array(z.string().trim().min(1).max(50)).max(20);

export const workflowBody = z.object({
  name: z.string().trim().min(1).max(255),
  description: z.string().max(5000).nullable().optional(),
  category: z.string().trim().min(1).max(50).nullable().optional(),
  tags: tags.optional(),
  definition: z.record(z.string(), z.unknown()),
  parameters: z.record(z.string(), z.unknown()).nullable().optional()
    .describe('JSON Schema (draft 2020-12) of the parameters a run takes: checked when saved (unknown keywords and formats refused); runs are validated against it, with its defaults filled in'),
}).strict();

export const workflowUpdateBody = workflowBody.partial().extend({ is_archived: z.boolean().optional() }).strict();

/** The portable document of GET /workflows/:id/export and POST /workflows/import. */
export const EXPORT_FORMAT = 'jarvis.workflow';
export const workflowDocument = z.object({
  format: z.literal(EXPORT_FORMAT),
  format_version: z.literal(1),
  exported_at: z.iso.datetime({ offset: true }).optional(),
  workflow: workflowBody.omit({}).extend({ version: z.number().int().min(1).optional() }).strict(),
}).strict();

export const workflowListQuery = pageQuery.extend({
  category: z.string().max(50).optional(),
  tag: z.string().max(50).optional(),
  q: z.string().max(200).optional(),
  archived: z.enum(['true', 'false']).optional(),
}).strict();

export function workflowRoutes(engine: Pick<TaskEngine, 'temporal' | 'limits'>) {
  return [
    defineRoute<undefined, z.infer<typeof workflowListQuery>>({
      method: 'get', path: '/workflows', tag: 'workflows', auth: 'user', summary: 'List my workflows',
      query: workflowListQuery, success: { status: 200, description: 'A page of my workflows (no definitions)', data: workflowPage }, errors: [400, 401],
      async handler(ctx, { query }) {
        const [rows, total] = await workflowsDb.page(ctx.state.repos,
          { archived: query.archived === 'true', category: query.category, tag: query.tag, nameLike: query.q },
          (query.page - 1) * query.page_size, query.page_size);
        envelope(ctx, pageOf(rows.map((w) => presentWorkflow(w)), total, query));
      },
    }),
    defineRoute<z.infer<typeof workflowBody>>({
      method: 'post', path: '/workflows', tag: 'workflows', auth: 'user', maxBodyBytes: MAX_BODY_BYTES, summary: 'Create a workflow (version 1)',
      body: workflowBody, success: { status: 201, description: 'The new workflow', data: workflowData }, errors: [400, 401, 403],
      async handler(ctx, { body }) {
        const { workflow, version } = await createWorkflow(ctx.state.repos, body, engine.limits.workflows);
        envelope(ctx, { workflow: presentWorkflow(workflow, version) }, 201);
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'get', path: '/workflows/:id', tag: 'workflows', auth: 'user', summary: 'A workflow with its current definition',
      params: idParams, success: { status: 200, description: 'The workflow', data: workflowData }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        const { workflow, version } = await getWorkflow(ctx.state.repos, params.id);
        envelope(ctx, { workflow: presentWorkflow(workflow, version) });
      },
    }),
    defineRoute<z.infer<typeof workflowUpdateBody>, undefined, z.infer<typeof idParams>>({
      method: 'put', path: '/workflows/:id', tag: 'workflows', auth: 'user', maxBodyBytes: MAX_BODY_BYTES,
      summary: 'Update a workflow; a new definition makes a new immutable version',
      params: idParams, body: workflowUpdateBody, success: { status: 200, description: 'The updated workflow', data: workflowData }, errors: [400, 401, 404],
      async handler(ctx, { params, body }) {
        const { workflow, version } = await updateWorkflow(ctx.state.repos, params.id, body);
        envelope(ctx, { workflow: presentWorkflow(workflow, version) });
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'get', path: '/workflows/:id/export', tag: 'workflows', auth: 'user',
      summary: 'The workflow as one portable JSON document (no ids)', params: idParams,
      success: { status: 200, description: 'The portable document', data: workflowExport }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        const { workflow, version } = await getWorkflow(ctx.state.repos, params.id);
        envelope(ctx, presentExport(workflow, version));
      },
    }),
    defineRoute<z.infer<typeof workflowDocument>>({
      method: 'post', path: '/workflows/import', tag: 'workflows', auth: 'user', maxBodyBytes: MAX_BODY_BYTES,
      summary: 'Create a workflow from an exported document (validated; ids in the file are never used)',
      body: workflowDocument, success: { status: 201, description: 'The new workflow', data: workflowData }, errors: [400, 401, 403],
      async handler(ctx, { body }) {
        const { version: _ignored, ...input } = body.workflow;
        const { workflow, version } = await createWorkflow(ctx.state.repos, input, engine.limits.workflows);
        envelope(ctx, { workflow: presentWorkflow(workflow, version) }, 201);
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'delete', path: '/workflows/:id', tag: 'workflows', auth: 'user', summary: 'Delete a workflow and its schedules (in Temporal too)',
      params: idParams, success: { status: 200, description: 'Deleted', data: deleted }, errors: [400, 401, 404, 409, 503],
      async handler(ctx, { params }) {
        await deleteWorkflow(ctx.state.repos, engine.temporal, params.id);
        envelope(ctx, { deleted: true });
      },
    }),
  ];
}
