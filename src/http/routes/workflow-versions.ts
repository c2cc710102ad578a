// A workflow's versions: list, read one, export one, make an older one current again. (Running a
// given version is POST /tasks with `workflow_version`.)
import { z } from 'zod';
import * as workflowsDb from '../../db/workflows.ts';
import { restoreVersion, workflowVersion } from '../../domain/workflow-versions.ts';
import { envelope } from '../middleware.ts';
import { pageOf, pageQuery } from '../paging.ts';
import { presentExport, presentVersion, presentVersionSummary, presentWorkflow } from '../presenters.ts';
import { defineRoute, idParams } from '../route.ts';
import { workflowData, workflowExport, workflowVersionData, workflowVersionPage } from '../schemas/workflows.ts';

/** A version number, as in `GET /workflows/:id` (`version`). */
export const versionNumber = z.coerce.number({ message: 'must be a version number' }).int().min(1).max(2_147_483_647);
export const versionParams = idParams.extend({ version: versionNumber }).strict();
type VersionParams = z.infer<typeof versionParams>;
const versionListQuery = pageQuery.strict();

export function workflowVersionRoutes() {
  return [
    defineRoute<undefined, z.infer<typeof versionListQuery>, z.infer<typeof idParams>>({
      method: 'get', path: '/workflows/:id/versions', tag: 'workflows', auth: 'user', summary: 'List a workflow\'s versions, newest first',
      params: idParams, query: versionListQuery,
      success: { status: 200, description: 'A page of versions (no definitions)', data: workflowVersionPage }, errors: [400, 401, 404],
      async handler(ctx, { params, query }) {
        const workflow = await workflowsDb.get(ctx.state.repos, params.id);
        const [rows, total] = await workflowsDb.versionPage(ctx.state.repos, workflow, (query.page - 1) * query.page_size, query.page_size);
        envelope(ctx, pageOf(rows.map((v) => presentVersionSummary(workflow, v)), total, query));
      },
    }),
    defineRoute<undefined, undefined, VersionParams>({
      method: 'get', path: '/workflows/:id/versions/:version', tag: 'workflows', auth: 'user', summary: 'One version with its definition and parameters',
      params: versionParams, success: { status: 200, description: 'The version', data: workflowVersionData }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        const { workflow, version } = await workflowVersion(ctx.state.repos, params.id, params.version);
        envelope(ctx, { version: presentVersion(workflow, version) });
      },
    }),
    defineRoute<undefined, undefined, VersionParams>({
      method: 'get', path: '/workflows/:id/versions/:version/export', tag: 'workflows', auth: 'user',
      summary: 'One version as the portable JSON document of GET /workflows/:id/export', params: versionParams,
      success: { status: 200, description: 'The portable document', data: workflowExport }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        const { workflow, version } = await workflowVersion(ctx.state.repos, params.id, params.version);
        envelope(ctx, presentExport(workflow, version));
      },
    }),
    defineRoute<undefined, undefined, VersionParams>({
      method: 'post', path: '/workflows/:id/versions/:version/restore', tag: 'workflows', auth: 'user',
      summary: 'Make an older version current: a new version with its definition and parameters (the current one: no change)',
      params: versionParams,
      success: { status: 201, also: [200], description: 'The workflow with its new current version; 200 when the version was current already', data: workflowData },
      errors: [400, 401, 404, 409],
      async handler(ctx, { params }) {
        const { workflow, version, created } = await restoreVersion(ctx.state.repos, params.id, params.version);
        envelope(ctx, { workflow: presentWorkflow(workflow, version) }, created ? 201 : 200);
      },
    }),
  ];
}
