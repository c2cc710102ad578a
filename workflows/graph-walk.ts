// The walk over the definition's graph: from `start` (or the node a retry resumes from) along
// the edges to `end`, running each node: device steps (device-step.ts) and the control nodes
// the engine runs itself (condition, wait, approval, loop).
import { condition } from '@temporalio/workflow';
import { runApproval } from './approval.ts';
import { boundary, heldAtBoundary } from './control.ts';
import { isDeviceStep, nextNodeId, render, type DefinitionNode } from './definition.ts';
import { runDeviceStep } from './device-step.ts';
import { evaluate, type Expr } from './expression.ts';
import { RunCancelled, RunFailed } from './run-errors.ts';
import type { Run } from './run.ts';

const DEFAULT_LOOP_MAX = 1000;

export async function walk(run: Run): Promise<void> {
  const { input, nodes } = run;
  const from = input.resumeFrom?.nodeId;
  let node = from ? nodes.get(from) : input.definition.nodes.find((n) => n.type === 'start');
  if (!node) throw new RunFailed({ code: 'INVALID_DEFINITION', message: `no node to start from (${from ?? 'start'})` });
  while (node) {
    if (heldAtBoundary(run)) await boundary(run);
    if (node.type === 'end') return;
    let branch: string | undefined;
    // A device step goes straight to its runner: no generic node wrapper (and its promise).
    if (isDeviceStep(node)) run.outputs[node.id] = await runDeviceStep(run, node, visit(run, node));
    else branch = await runControlNode(run, node);
    const next = nextNodeId(input.definition, node.id, branch);
    node = next === undefined ? undefined : nodes.get(next);
  }
}

/** Runs a control node; returns the branch label to follow, if the node branches. */
async function runControlNode(run: Run, node: DefinitionNode): Promise<string | undefined> {
  visit(run, node);
  const params = (node.params ?? {}) as Record<string, unknown>;
  switch (node.type) {
    case 'start':
      return undefined;
    case 'condition': {
      const result = evaluate(params.if as Expr, run.scope());
      run.outputs[node.id] = { result };
      return String(result);
    }
    case 'wait':
      await runWait(run, node, params);
      return undefined;
    case 'approval':
      return runApproval(run, node, params);
    case 'loop':
      return runLoop(run, node, params);
    default:
      throw new RunFailed({
        code: 'UNSUPPORTED_NODE',
        message: `node type "${node.type}" is not supported by this engine version`,
        step_id: node.id,
      });
  }
}

/** Counts a visit of the node (a loop visits a node again); returns its number. */
function visit(run: Run, node: DefinitionNode): number {
  const n = (run.visits.get(node.id) ?? 0) + 1;
  run.visits.set(node.id, n);
  return n;
}

/** A durable timer that cancel interrupts. */
async function runWait(run: Run, node: DefinitionNode, params: Record<string, unknown>): Promise<void> {
  const { state } = run;
  const ms = Number(render(params.durationMs, run.scope()) ?? 0);
  state.currentNode = node.id;
  run.details();
  await condition(() => state.cancelRequested, Math.max(0, ms));
  if (state.cancelRequested) throw new RunCancelled();
  run.outputs[node.id] = { waited_ms: ms };
}

/** A bounded repeat (`count`) or for-each (`items`); `{{loop.index}}`, `{{loop.item}}` inside. */
function runLoop(run: Run, node: DefinitionNode, params: Record<string, unknown>): string {
  let st = run.loops.get(node.id);
  if (!st) {
    const max = typeof params.maxIterations === 'number' ? params.maxIterations : DEFAULT_LOOP_MAX;
    const rendered = params.items !== undefined ? render(params.items, run.scope()) : null;
    if (rendered !== null && !Array.isArray(rendered)) {
      throw new RunFailed({ code: 'LOOP_ITEMS_NOT_A_LIST', message: 'loop items did not resolve to a list', step_id: node.id });
    }
    const items = rendered as unknown[] | null;
    const total = items ? items.length : Number(render(params.count, run.scope()) ?? 0);
    if (!Number.isInteger(total) || total < 0 || total > max) {
      throw new RunFailed({ code: 'LOOP_BOUND', message: `loop would run ${total} times (allowed 0 to ${max})`, step_id: node.id });
    }
    st = { index: 0, items, total };
    run.loops.set(node.id, st);
  }
  if (st.index < st.total) {
    run.loopScope = { node: node.id, index: st.index, item: st.items ? st.items[st.index] : st.index, count: st.total };
    st.index++;
    return 'body';
  }
  run.loops.delete(node.id);
  run.outputs[node.id] = { iterations: st.total };
  run.loopScope = null;
  return 'done';
}
