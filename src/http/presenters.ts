// What clients see of each row: snake_case, no secrets. Each presenter returns the output type of
// its schema in src/http/schemas/, so the compiler holds the two together and the router's
// response check (route.ts) catches what types cannot (an extra field, a malformed date).
import type { z } from 'zod';
import type { Device, Task, TaskStep, User, Workflow, WorkflowVersion } from '../db/entities.ts';
import type { Device as DeviceOut } from './schemas/devices.ts';
import type { TaskNames } from '../db/tasks.ts';
import type { StepProgress as StepProgressOut, Task as TaskOut, TaskStep as TaskStepOut } from './schemas/tasks.ts';
import type { User as UserOut } from './schemas/users.ts';
import type {
  Workflow as WorkflowOut, WorkflowSummary, WorkflowVersion as WorkflowVersionOut, WorkflowVersionSummary, workflowExport,
} from './schemas/workflows.ts';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export function presentUser(u: User): z.output<typeof UserOut> {
  return { id: u.id, email: u.email, name: u.name ?? null, created_at: u.createdAt.toISOString() };
}

export function presentDevice(d: Device): z.output<typeof DeviceOut> {
  return {
    id: d.id,
    device_id: d.deviceId,
    device_name: d.deviceName,
    os_type: d.osType ?? null,
    os_version: d.osVersion ?? null,
    app_version: d.appVersion ?? null,
    capabilities: d.capabilities ?? [],
    is_online: d.isOnline,
    is_busy: d.isBusy,
    status: d.status ?? null,
    status_at: iso(d.statusAt),
    last_online_at: iso(d.lastOnlineAt),
    created_at: d.createdAt.toISOString(),
  };
}

/** A workflow; with its current version's definition when `version` is given. */
export function presentWorkflow(w: Workflow): z.output<typeof WorkflowSummary>;
export function presentWorkflow(w: Workflow, version: WorkflowVersion): z.output<typeof WorkflowOut>;
export function presentWorkflow(w: Workflow, version?: WorkflowVersion): z.output<typeof WorkflowSummary> | z.output<typeof WorkflowOut> {
  const summary = {
    id: w.id,
    name: w.name,
    description: w.description ?? null,
    category: w.category ?? null,
    tags: w.tags,
    version: w.currentVersion,
    is_archived: w.isArchived,
    created_at: w.createdAt.toISOString(),
    updated_at: w.updatedAt.toISOString(),
  };
  return version ? { ...summary, definition: version.definition, parameters: version.parameters ?? null, version_id: version.id } : summary;
}

export function presentStep(s: TaskStep): z.output<typeof TaskStepOut> {
  return {
    step_id: s.nodeId,
    name: s.name ?? null,
    type: s.nodeType,
    attempt: s.attempt,
    key: s.key,
    status: s.status,
    output: s.output ?? null,
    error: (s.error ?? null) as z.output<typeof TaskStepOut>['error'],
    started_at: iso(s.startedAt),
    finished_at: iso(s.finishedAt),
  };
}

export function presentTask(
  t: Task,
  names: TaskNames,
  extra: { steps?: TaskStep[]; temporalUiUrl?: string; namespace?: string } = {},
): z.output<typeof TaskOut> {
  return {
    id: t.id,
    workflow_id: t.workflowId,
    workflow_version_id: t.workflowVersionId,
    device_id: t.deviceId,
    workflow_name: names.workflows.get(t.workflowId) ?? null,
    device_name: names.devices.get(t.deviceId) ?? null,
    status: t.status,
    status_reason: t.statusReason ?? null,
    priority: t.priority,
    parameters: t.parameters,
    idempotency_key: t.idempotencyKey ?? null,
    current_node: t.currentNode ?? null,
    progress: t.progress,
    result: t.result ?? null,
    error: t.error ?? null,
    last_seq: t.lastSeq,
    created_at: t.createdAt.toISOString(),
    started_at: iso(t.startedAt),
    finished_at: iso(t.finishedAt),
    duration_ms: t.durationMs ?? null,
    temporal: {
      workflow_id: t.temporalWorkflowId,
      run_id: t.temporalRunId ?? null,
      ...(extra.temporalUiUrl
        ? { ui_url: `${extra.temporalUiUrl}/namespaces/${encodeURIComponent(extra.namespace ?? 'default')}/workflows/${encodeURIComponent(t.temporalWorkflowId)}` }
        : {}),
    },
    ...(extra.steps ? { steps: extra.steps.map(presentStep) } : {}),
  };
}

/** A version of `w` in a list (read without its definition). */
export function presentVersionSummary(w: Workflow, v: Pick<WorkflowVersion, 'id' | 'version' | 'createdAt'>): z.output<typeof WorkflowVersionSummary> {
  return { id: v.id, workflow_id: w.id, version: v.version, is_current: v.version === w.currentVersion, created_at: v.createdAt.toISOString() };
}

/** A version of `w` with its definition and parameters. */
export function presentVersion(w: Workflow, v: WorkflowVersion): z.output<typeof WorkflowVersionOut> {
  return { ...presentVersionSummary(w, v), definition: v.definition, parameters: v.parameters ?? null };
}

/** The portable document of a workflow at version `v` (no ids: an import makes new ones). */
export function presentExport(w: Workflow, v: WorkflowVersion): z.output<typeof workflowExport> {
  return {
    format: 'jarvis.workflow',
    format_version: 1,
    exported_at: new Date().toISOString(),
    workflow: {
      name: w.name, description: w.description ?? null, category: w.category ?? null, tags: w.tags,
      version: v.version, definition: v.definition, parameters: v.parameters ?? null,
    },
  };
}

/** The recorded progress while the step it belongs to runs (a finished step's last report is stale). */
export function presentStepProgress(t: Task, steps: TaskStep[]): z.output<typeof StepProgressOut> | null {
  const p = t.stepProgress;
  if (!p || !steps.some((s) => s.status === 'running' && s.key === p.key)) return null;
  return { step_id: p.step_id, attempt: p.attempt, percent: p.percent ?? null, message: p.message ?? null, at: new Date(p.at).toISOString() };
}
