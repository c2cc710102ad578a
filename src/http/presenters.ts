// What clients see of each row: snake_case, no secrets.
import type { Device, Task, TaskStep, User, Workflow, WorkflowVersion } from '../db/entities.ts';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export function presentUser(u: User) {
  return { id: u.id, email: u.email, name: u.name ?? null, created_at: iso(u.createdAt) };
}

export function presentDevice(d: Device) {
  return {
    id: d.id,
    device_id: d.deviceId,
    device_name: d.deviceName,
    os_type: d.osType ?? null,
    os_version: d.osVersion ?? null,
    app_version: d.appVersion ?? null,
    capabilities: d.capabilities ?? [],
    is_online: d.isOnline,
    last_online_at: iso(d.lastOnlineAt),
    created_at: iso(d.createdAt),
  };
}

export function presentWorkflow(w: Workflow, version?: WorkflowVersion) {
  return {
    id: w.id,
    name: w.name,
    description: w.description ?? null,
    category: w.category ?? null,
    tags: w.tags,
    version: w.currentVersion,
    is_archived: w.isArchived,
    created_at: iso(w.createdAt),
    updated_at: iso(w.updatedAt),
    ...(version ? { definition: version.definition, parameters: version.parameters ?? null, version_id: version.id } : {}),
  };
}

export function presentStep(s: TaskStep) {
  return {
    step_id: s.nodeId,
    name: s.name ?? null,
    type: s.nodeType,
    attempt: s.attempt,
    key: s.key,
    status: s.status,
    output: s.output ?? null,
    error: s.error ?? null,
    started_at: iso(s.startedAt),
    finished_at: iso(s.finishedAt),
  };
}

export function presentTask(t: Task, extra: { steps?: TaskStep[]; temporalUiUrl?: string; namespace?: string } = {}) {
  return {
    id: t.id,
    workflow_id: t.workflowId,
    workflow_version_id: t.workflowVersionId,
    device_id: t.deviceId,
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
    created_at: iso(t.createdAt),
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
