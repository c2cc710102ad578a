// Workflow definitions: a workflow row with immutable versions; a definition change is a
// new version, so runs keep the exact graph they started with.
import type { Workflow, WorkflowVersion } from '../db/entities.ts';
import type { OwnedRepos } from '../db/owned.ts';
import * as workflowsDb from '../db/workflows.ts';
import { errors } from '../errors.ts';
import { validateDefinition } from './definition-schema.ts';
import type { Client } from '@temporalio/client';
import { refusedOverLimit } from '../db/quotas.ts';
import { deleteSchedulesOf } from './schedules.ts';
import { checkParameterSchema } from './parameter-schema.ts';

export interface WorkflowInput {
  name: string;
  description?: string | null;
  category?: string | null;
  tags?: string[];
  definition: unknown;
  parameters?: Record<string, unknown> | null;
}

function checkedDefinition(definition: unknown) {
  const { definition: def, errors: problems } = validateDefinition(definition);
  if (!def) throw errors.invalid('invalid workflow definition', problems);
  return def;
}

/** Creates a workflow of the user's; at most `maxWorkflows` per user (403 code 1003 past it). */
export async function createWorkflow(repos: OwnedRepos, input: WorkflowInput, maxWorkflows: number) {
  const definition = checkedDefinition(input.definition);
  checkParameterSchema(input.parameters);
  return workflowsDb.insert(repos, {
    id: crypto.randomUUID(),
    name: input.name,
    description: input.description ?? null,
    category: input.category ?? null,
    tags: input.tags ?? [],
    currentVersion: 1,
    isArchived: false,
  }, {
    id: crypto.randomUUID(),
    version: 1,
    definition: definition as unknown as Record<string, unknown>,
    parameters: input.parameters ?? null,
  }, maxWorkflows).catch(refusedOverLimit('workflows', maxWorkflows));
}

/** The user's workflow and the version it runs now. */
export async function getWorkflow(repos: OwnedRepos, id: string): Promise<{ workflow: Workflow; version: WorkflowVersion }> {
  const workflow = await workflowsDb.get(repos, id);
  return { workflow, version: await workflowsDb.currentVersion(repos, workflow) };
}

export async function updateWorkflow(repos: OwnedRepos, id: string, input: Partial<WorkflowInput> & { is_archived?: boolean }) {
  const { workflow: wf, version: current } = await getWorkflow(repos, id);
  if (input.name !== undefined) wf.name = input.name;
  if (input.description !== undefined) wf.description = input.description;
  if (input.category !== undefined) wf.category = input.category;
  if (input.tags !== undefined) wf.tags = input.tags;
  if (input.is_archived !== undefined) wf.isArchived = input.is_archived;
  const defChanged = input.definition !== undefined && JSON.stringify(input.definition) !== JSON.stringify(current.definition);
  const paramsChanged = input.parameters !== undefined && JSON.stringify(input.parameters) !== JSON.stringify(current.parameters);
  if (!defChanged && !paramsChanged) {
    await workflowsDb.save(repos, wf);
    return { workflow: wf, version: current };
  }
  const definition = defChanged ? checkedDefinition(input.definition) : current.definition;
  if (paramsChanged) checkParameterSchema(input.parameters);
  wf.currentVersion += 1;
  const version = await workflowsDb.save(repos, wf, {
    id: crypto.randomUUID(),
    version: wf.currentVersion,
    definition: definition as unknown as Record<string, unknown>,
    parameters: paramsChanged ? (input.parameters ?? null) : current.parameters,
  });
  return { workflow: wf, version: version! };
}

/**
 * Deletes the user's workflow, refused while any of its tasks has not finished. Its schedules go
 * first, in Temporal and then their rows: a schedule must not outlive what it runs.
 */
export async function deleteWorkflow(repos: OwnedRepos, temporal: Client, id: string): Promise<void> {
  const wf = await workflowsDb.get(repos, id);
  const active = await workflowsDb.unfinishedTasks(repos, wf.id);
  if (active) throw errors.conflict(`workflow has ${active} unfinished task(s); cancel them first`);
  await deleteSchedulesOf(repos, temporal, { workflowId: wf.id });
  await workflowsDb.remove(repos, wf);
}
