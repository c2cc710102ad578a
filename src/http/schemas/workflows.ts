// Responses of /workflows: a workflow, with its current definition when one is asked for.
import { z } from 'zod';
import { EXAMPLE, instant, jsonObject, pageOf, uuid } from './common.ts';

const definitionExample = {
  nodes: [{ id: 'start', type: 'start' }, { id: 's1', type: 'demo.echo', params: { text: 'hi' } }, { id: 'end', type: 'end' }],
  edges: [{ from: 'start', to: 's1' }, { from: 's1', to: 'end' }],
};

const summary = {
  id: uuid,
  name: z.string(),
  description: z.string().nullable(),
  category: z.string().nullable(),
  tags: z.array(z.string()),
  version: z.int().min(1).describe('The current version number'),
  is_archived: z.boolean(),
  created_at: instant,
  updated_at: instant,
};
const summaryExample = {
  id: EXAMPLE.workflowId, name: 'Say hi', description: 'Echoes a greeting on the PC', category: 'demo', tags: ['demo'],
  version: 1, is_archived: false, created_at: EXAMPLE.at, updated_at: EXAMPLE.at,
};

/** A workflow in a list: no definition. */
export const WorkflowSummary = z.strictObject(summary).meta({ id: 'WorkflowSummary', examples: [summaryExample] });

/** One workflow with its current version's definition. */
export const Workflow = z.strictObject({
  ...summary,
  definition: jsonObject.describe('Nodes and edges of the current version'),
  parameters: jsonObject.nullable(),
  version_id: uuid,
}).meta({
  id: 'Workflow',
  examples: [{ ...summaryExample, definition: definitionExample, parameters: null, version_id: EXAMPLE.versionId }],
});

export const workflowData = z.strictObject({ workflow: Workflow });
export const workflowPage = pageOf(WorkflowSummary);

export const workflowExport = z.strictObject({
  format: z.literal('jarvis.workflow'),
  format_version: z.literal(1),
  exported_at: instant,
  workflow: z.strictObject({
    name: z.string(),
    description: z.string().nullable(),
    category: z.string().nullable(),
    tags: z.array(z.string()),
    version: z.int().min(1),
    definition: jsonObject,
    parameters: jsonObject.nullable(),
  }),
}).meta({
  examples: [{
    format: 'jarvis.workflow', format_version: 1, exported_at: EXAMPLE.at,
    workflow: { name: 'Say hi', description: null, category: 'demo', tags: ['demo'], version: 1, definition: definitionExample, parameters: null },
  }],
});

const versionFields = {
  id: uuid,
  workflow_id: uuid,
  version: z.int().min(1),
  is_current: z.boolean(),
  created_at: instant,
};
const versionExample = { id: EXAMPLE.versionId, workflow_id: EXAMPLE.workflowId, version: 2, is_current: true, created_at: EXAMPLE.at };

/** A version in a list: no definition. */
export const WorkflowVersionSummary = z.strictObject(versionFields).meta({ id: 'WorkflowVersionSummary', examples: [versionExample] });

/** One version with its definition and parameters. */
export const WorkflowVersion = z.strictObject({
  ...versionFields,
  definition: jsonObject,
  parameters: jsonObject.nullable(),
}).meta({ id: 'WorkflowVersion', examples: [{ ...versionExample, definition: definitionExample, parameters: null }] });

export const workflowVersionPage = pageOf(WorkflowVersionSummary);
export const workflowVersionData = z.strictObject({ version: WorkflowVersion });
