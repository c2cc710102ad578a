// The user's workflows and their immutable versions.
import { FINISHED_STATUSES, Task, Workflow, WorkflowVersion } from './entities.ts';
import { escapeLike } from './filters.ts';
import type { OwnedRepos } from './owned.ts';
import { withinLimit } from './quotas.ts';
import { errors } from '../errors.ts';

export interface WorkflowFilter {
  archived: boolean;
  category?: string;
  tag?: string;
  /** Part of the name, any case. */
  nameLike?: string;
}

/** The user's workflows, most recently changed first. */
export function page(repos: OwnedRepos, filter: WorkflowFilter, offset: number, limit: number) {
  const where: Record<string, unknown> = { isArchived: filter.archived };
  if (filter.category) where.category = filter.category;
  if (filter.tag) where.tags = { $contains: [filter.tag] };
  if (filter.nameLike) where.name = { $ilike: `%${escapeLike(filter.nameLike)}%` };
  return repos.findAndCount(Workflow, where, { orderBy: { updatedAt: 'desc', id: 'desc' }, offset, limit });
}

export function get(repos: OwnedRepos, id: string): Promise<Workflow> {
  return repos.get(Workflow, id, 'workflow');
}

/** The version the workflow runs now (of a workflow read through the same `repos`). */
export async function currentVersion(repos: OwnedRepos, wf: Workflow): Promise<WorkflowVersion> {
  const v = await repos.em.findOne(WorkflowVersion, { workflowId: wf.id, version: wf.currentVersion });
  if (!v) throw new Error(`workflow ${wf.id} has no version ${wf.currentVersion}`);
  return v;
}

type NewWorkflow = Omit<Workflow, 'userId' | 'createdAt' | 'updatedAt'>;
type NewVersion = Omit<WorkflowVersion, 'workflowId' | 'createdAt'>;

/** A new workflow of the user's with its first version, in one transaction. */
/** Inserts the user's workflow and its first version, unless the user already holds `max` workflows. */
export async function insert(repos: OwnedRepos, workflow: NewWorkflow, version: NewVersion, max: number) {
  // Plain id columns carry no insert order for the unit of work: flush the parent first.
  return withinLimit(repos.em, repos, 'workflows', max, async (em) => {
    const wf = em.create(Workflow, { ...workflow, userId: repos.userId });
    await em.flush();
    const v = em.create(WorkflowVersion, { ...version, workflowId: wf.id });
    await em.flush();
    return { workflow: wf, version: v };
  });
}

/**
 * Writes the changes made to a workflow read through `repos`, with its new version if given
 * (`wf.currentVersion` already names it).
 */
export async function save(repos: OwnedRepos, wf: Workflow, newVersion?: NewVersion): Promise<WorkflowVersion | undefined> {
  const v = newVersion ? repos.em.create(WorkflowVersion, { ...newVersion, workflowId: wf.id }) : undefined;
  await repos.em.flush();
  return v;
}

/** How many of the user's tasks of this workflow have not finished. */
export function unfinishedTasks(repos: OwnedRepos, workflowId: string): Promise<number> {
  return repos.count(Task, { workflowId, status: { $nin: FINISHED_STATUSES } });
}

export async function remove(repos: OwnedRepos, wf: Workflow): Promise<void> {
  await repos.em.remove(wf).flush();
}

/** A page of the versions of a workflow read through `repos`, newest first (no definitions). */
export function versionPage(repos: OwnedRepos, wf: Workflow, offset: number, limit: number) {
  return repos.em.findAndCount(WorkflowVersion, { workflowId: wf.id },
    { orderBy: { version: 'desc' }, offset, limit, fields: ['id', 'workflowId', 'version', 'createdAt'] });
}

/** Version `n` of a workflow read through `repos` (404 when it has none). */
export async function versionByNumber(repos: OwnedRepos, wf: Workflow, n: number): Promise<WorkflowVersion> {
  const v = await repos.em.findOne(WorkflowVersion, { workflowId: wf.id, version: n });
  if (!v) throw errors.notFound('workflow version');
  return v;
}
