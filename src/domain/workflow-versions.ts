// A workflow's versions: each is immutable, so going back to an older one makes a new version
// with its definition and parameters (the history stays as it was, and runs of every version
// keep the graph they started with).
import type { Workflow, WorkflowVersion } from '../db/entities.ts';
import type { OwnedRepos } from '../db/owned.ts';
import * as workflowsDb from '../db/workflows.ts';
import { errors } from '../errors.ts';

/** The user's workflow and its version `n`. */
export async function workflowVersion(repos: OwnedRepos, workflowId: string, n: number): Promise<{ workflow: Workflow; version: WorkflowVersion }> {
  const workflow = await workflowsDb.get(repos, workflowId);
  return { workflow, version: await workflowsDb.versionByNumber(repos, workflow, n) };
}

/**
 * Makes version `n` current again, as a new version with its definition and parameters. Asking
 * for the current version changes nothing.
 */
export async function restoreVersion(repos: OwnedRepos, workflowId: string, n: number) {
  const { workflow, version: old } = await workflowVersion(repos, workflowId, n);
  if (n === workflow.currentVersion) return { workflow, version: old, created: false };
  workflow.currentVersion += 1;
  try {
    const version = await workflowsDb.save(repos, workflow, {
      id: crypto.randomUUID(),
      version: workflow.currentVersion,
      definition: old.definition,
      parameters: old.parameters ?? null,
    });
    return { workflow, version: version!, created: true };
  } catch (err) {
    // Another change made the same version number first.
    if ((err as { code?: string }).code === '23505') throw errors.conflict('the workflow changed meanwhile; read it and try again');
    throw err;
  }
}

/** The version a run asked for by number: one of the user's workflow, which must not be archived. */
export async function versionToRun(repos: OwnedRepos, workflowId: string, n: number): Promise<WorkflowVersion> {
  const { workflow, version } = await workflowVersion(repos, workflowId, n);
  if (workflow.isArchived) throw errors.conflict('workflow is archived');
  return version;
}
