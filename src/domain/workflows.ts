// Workflow definitions: a workflow row with immutable versions; a definition change is a
// new version, so runs keep the exact graph they started with.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Workflow, WorkflowVersion } from '../db/entities.ts';
import type { OwnedRepos } from '../db/owned.ts';
import { errors } from '../errors.ts';
import { validateDefinition } from './definition-schema.ts';

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

export async function createWorkflow(repos: OwnedRepos, input: WorkflowInput) {
  const definition = checkedDefinition(input.definition);
  // Plain id columns carry no insert order for the unit of work: flush the parent first.
  return repos.em.transactional(async (em) => {
    const workflow = em.create(Workflow, {
      id: crypto.randomUUID(),
      userId: repos.userId,
      name: input.name,
      description: input.description ?? null,
      category: input.category ?? null,
      tags: input.tags ?? [],
      currentVersion: 1,
      isArchived: false,
    });
    await em.flush();
    const version = em.create(WorkflowVersion, {
      id: crypto.randomUUID(),
      workflowId: workflow.id,
      version: 1,
      definition: definition as unknown as Record<string, unknown>,
      parameters: input.parameters ?? null,
    });
    await em.flush();
    return { workflow, version };
  });
}

export async function currentVersion(em: EntityManager, wf: Workflow): Promise<WorkflowVersion> {
  const v = await em.findOne(WorkflowVersion, { workflowId: wf.id, version: wf.currentVersion });
  if (!v) throw new Error(`workflow ${wf.id} has no version ${wf.currentVersion}`);
  return v;
}

export async function updateWorkflow(repos: OwnedRepos, id: string, input: Partial<WorkflowInput> & { is_archived?: boolean }) {
  const wf = await repos.get(Workflow, id, 'workflow');
  let version = await currentVersion(repos.em, wf);
  if (input.name !== undefined) wf.name = input.name;
  if (input.description !== undefined) wf.description = input.description;
  if (input.category !== undefined) wf.category = input.category;
  if (input.tags !== undefined) wf.tags = input.tags;
  if (input.is_archived !== undefined) wf.isArchived = input.is_archived;
  const defChanged = input.definition !== undefined && JSON.stringify(input.definition) !== JSON.stringify(version.definition);
  const paramsChanged = input.parameters !== undefined && JSON.stringify(input.parameters) !== JSON.stringify(version.parameters);
  if (defChanged || paramsChanged) {
    const definition = defChanged ? checkedDefinition(input.definition) : version.definition;
    wf.currentVersion += 1;
    version = repos.em.create(WorkflowVersion, {
      id: crypto.randomUUID(),
      workflowId: wf.id,
      version: wf.currentVersion,
      definition: definition as unknown as Record<string, unknown>,
      parameters: paramsChanged ? (input.parameters ?? null) : version.parameters,
    });
  }
  await repos.em.flush();
  return { workflow: wf, version };
}
