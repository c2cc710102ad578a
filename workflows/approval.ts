// The approval node: the run waits for approve / reject (REST, the phone) or the timeout, and
// follows the decision's edge.
import { condition } from '@temporalio/workflow';
import { outgoing, render, type DefinitionNode } from './definition.ts';
import { RunCancelled, RunFailed } from './run-errors.ts';
import type { ApprovalDecision } from './api.ts';
import type { Run } from './run.ts';

export const DEFAULT_APPROVAL_TIMEOUT_MS = 24 * 3600 * 1000;

/** Returns the branch label to follow; throws RunFailed when a rejection or timeout ends the run. */
export async function runApproval(run: Run, node: DefinitionNode, params: Record<string, unknown>): Promise<string | undefined> {
  const { state, events } = run;
  const timeoutMs = typeof params.timeoutMs === 'number' ? params.timeoutMs : DEFAULT_APPROVAL_TIMEOUT_MS;
  const onTimeout = (params.onTimeout as 'approve' | 'reject' | 'fail' | undefined) ?? 'reject';
  state.currentNode = node.id;
  const { decided, decision } = await awaitDecision(run, {
    step_id: node.id, name: node.name ?? null,
    message: render(params.message ?? null, run.scope()), timeout_ms: timeoutMs,
  });
  let approved: boolean;
  if (decided && decision) {
    approved = decision.approved;
    decidedBy(run, node.id, decision);
  } else {
    if (onTimeout === 'fail') {
      throw new RunFailed({ code: 'APPROVAL_TIMEOUT', message: `no decision within ${timeoutMs} ms`, step_id: node.id });
    }
    approved = onTimeout === 'approve';
    events.emit('run.approval_decided', { step_id: node.id, approved, by: 'timeout', client: null, comment: null, timed_out: true });
  }
  if (state.status === 'running') run.setStatus('running', null);
  run.outputs[node.id] = { approved, comment: decision?.comment ?? null, by: decision?.by ?? 'timeout', timed_out: !decided };
  const labels = outgoing(run.input.definition, node.id).map((e) => e.when);
  if (approved) return labels.includes('approved') ? 'approved' : undefined;
  if (labels.includes('rejected')) return 'rejected';
  throw new RunFailed({
    code: decided ? 'APPROVAL_REJECTED' : 'APPROVAL_TIMEOUT',
    message: decided ? `rejected by ${decision?.by}${decision?.comment ? `: ${decision.comment}` : ''}` : 'approval timed out',
    step_id: node.id,
  });
}

/**
 * Asks the person (REST, the phone) and waits for the answer: the run shows `waiting_approval`
 * and records `run.waiting_approval` with `data`. Returns whether a decision came within
 * `data.timeout_ms`; throws RunCancelled when the run is cancelled meanwhile. Used by approval
 * nodes and by a device step the PC stopped in (`onInterrupt: ask`).
 */
export async function awaitDecision(
  run: Run,
  data: { step_id: string; timeout_ms: number } & Record<string, unknown>,
): Promise<{ decided: boolean; decision: ApprovalDecision | null }> {
  const { state, events } = run;
  run.approval = { nodeId: data.step_id, decision: null };
  run.setStatus(state.paused ? 'paused' : 'running', 'waiting_approval');
  events.emit('run.waiting_approval', data);
  await events.flush();
  const decided = await condition(() => run.approval?.decision !== null || state.cancelRequested, data.timeout_ms);
  const decision = run.approval?.decision ?? null;
  run.approval = null;
  if (state.cancelRequested) throw new RunCancelled();
  return { decided, decision };
}

/** Records the person's decision (`run.approval_decided`). */
export function decidedBy(run: Run, stepId: string, decision: ApprovalDecision): void {
  run.events.emit('run.approval_decided', {
    step_id: stepId, approved: decision.approved, by: decision.by, client: decision.client ?? null,
    comment: decision.comment ?? null, timed_out: false,
  });
}
