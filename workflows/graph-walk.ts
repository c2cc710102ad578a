// The walk over the definition's graph: from `start` (or the node a retry resumes from) along
// the edges to `end`, running each node: device steps (device-step.ts) and the control nodes
// the engine runs itself (condition, wait, approval, loop).
import { condition, sleep } from '@temporalio/workflow';
import { runApproval } from './approval.ts';
import {
  CONTROL_VISITS_PER_TASK,
  INVALID_PARAM_VALUE,
  MAX_LOOP_COUNT,
  MAX_LOOP_ITEMS,
  MAX_NODE_VISITS_PER_RUN,
  MAX_WAIT_MS,
  RUN_BUDGET_EXCEEDED,
} from './bounds.ts';
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
    // Awaited only when it yields: `await undefined` would still cost a promise per node.
    const yielding = run.budgeted ? spend(run, node) : undefined;
    if (yielding) await yielding;
    let branch: string | undefined;
    // A device step goes straight to its runner: no generic node wrapper (and its promise).
    if (isDeviceStep(node)) run.outputs[node.id] = await runDeviceStep(run, node, visit(run, node));
    else {
      const taken = runControlNode(run, node);
      branch = typeof taken === 'object' ? await taken : taken;
    }
    const next = nextNodeId(input.definition, node.id, branch);
    node = next === undefined ? undefined : nodes.get(next);
  }
}

/**
 * Counts a node visit against the run's budget (MAX_NODE_VISITS_PER_RUN), and after
 * CONTROL_VISITS_PER_TASK control nodes in a row yields the workflow task with a 1 ms timer:
 * loops of conditions would otherwise run in one task past the SDK's deadline, retried forever,
 * with no signal (cancel, pause) handled meanwhile. A device step ends the streak (its dispatch
 * yields). Not async unless it yields: the step path pays no promise for it.
 */
function spend(run: Run, node: DefinitionNode): Promise<void> | undefined {
  if (++run.nodeVisits > MAX_NODE_VISITS_PER_RUN) {
    throw new RunFailed({
      code: RUN_BUDGET_EXCEEDED,
      message: `the run visited more than ${MAX_NODE_VISITS_PER_RUN} nodes`,
      step_id: node.id,
    });
  }
  if (isDeviceStep(node)) {
    run.controlVisitsInTask = 0;
    return undefined;
  }
  if (++run.controlVisitsInTask < CONTROL_VISITS_PER_TASK) return undefined;
  run.controlVisitsInTask = 0;
  return sleep(1);
}

/**
 * Whether a templated value is a whole number from 0 to `max`, as the literal must be at save
 * (a number, or its decimal digits: parameters may arrive as strings).
 */
function within(value: unknown, max: number): boolean {
  if (typeof value !== 'number' && !(typeof value === 'string' && /^\d{1,16}$/.test(value))) return false;
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= 0 && n <= max;
}

/** A templated value outside the bounds its literal has at save: the run fails with the node named. */
function invalidParam(node: DefinitionNode, name: string, value: unknown, allowed: string): RunFailed {
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 100)) : String(value);
  return new RunFailed({
    code: INVALID_PARAM_VALUE,
    message: `${node.type} "${node.id}": ${name} resolved to ${shown} (allowed ${allowed})`,
    step_id: node.id,
  });
}

/**
 * Runs a control node; returns the branch label to follow, if the node branches. Not async: a
 * node that waits (wait, approval) returns the promise of its branch, the others (start,
 * condition, loop) their branch itself, with no promise to await.
 */
function runControlNode(run: Run, node: DefinitionNode): string | undefined | Promise<string | undefined> {
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
      return runWait(run, node, params);
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
async function runWait(run: Run, node: DefinitionNode, params: Record<string, unknown>): Promise<undefined> {
  const { state } = run;
  const rendered = render(params.durationMs, run.scope()) ?? 0;
  const ms = Number(rendered);
  if (run.budgeted && !within(rendered, MAX_WAIT_MS)) {
    throw invalidParam(node, 'durationMs', rendered, `a whole number of ms from 0 to ${MAX_WAIT_MS}`);
  }
  state.currentNode = node.id;
  run.details();
  await condition(() => state.cancelRequested, Math.max(0, ms));
  if (state.cancelRequested) throw new RunCancelled();
  run.outputs[node.id] = { waited_ms: ms };
  return undefined;
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
    const count = items ? null : render(params.count, run.scope()) ?? 0;
    if (run.budgeted) {
      if (items && items.length > MAX_LOOP_ITEMS) throw invalidParam(node, 'items', `${items.length} items`, `up to ${MAX_LOOP_ITEMS}`);
      if (count !== null && !within(count, MAX_LOOP_COUNT)) {
        throw invalidParam(node, 'count', count, `a whole number from 0 to ${MAX_LOOP_COUNT}`);
      }
    }
    const total = items ? items.length : Number(count);
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
