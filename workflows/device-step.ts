// A device step: dispatched to the API node holding the PC's socket (activity `dispatchStep`
// on that node's device-step queue), sent again with the same key when the device is lost mid-step, and
// retried with backoff when the device reports a retryable error.
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  TimeoutFailure,
  condition,
  isCancellation,
  patched,
  proxyActivities,
} from '@temporalio/workflow';
import type { DeviceStepActivities, DispatchResult } from '../activities/types.ts';
import { deviceStepQueue, stepKey, type RunError, type RunEvent, type StepArtifactRef, type StepState } from './api.ts';
import { DEFAULT_APPROVAL_TIMEOUT_MS, awaitDecision, decidedBy } from './approval.ts';
import { boundary, heldAtBoundary } from './control.ts';
import { STEP_INTERRUPTED, render, type DefinitionNode, type RetrySpec } from './definition.ts';
import { awaitDevice, knownNode } from './lane-and-presence.ts';
import { DeviceLost, RunCancelled, RunFailed, StepFailed } from './run-errors.ts';
import type { Run } from './run.ts';
import { DirectScope } from './scope.ts';
import { FailureType, type StepErrorDetails } from './step-failures.ts';

const DEFAULT_STEP_TIMEOUT_MS = 10 * 60 * 1000;
const DEFAULT_RETRY: Required<Omit<RetrySpec, 'retryableCodes'>> = {
  maxAttempts: 3,
  initialIntervalMs: 1000,
  backoffCoefficient: 2,
  maxIntervalMs: 60_000,
};

/** Runs a device step to its output (its `visit`-th run of the node); throws RunFailed when it fails. */
export async function runDeviceStep(run: Run, node: DefinitionNode, visit: number): Promise<unknown> {
  const retry = { ...DEFAULT_RETRY, ...node.retry };
  const params = render(node.params ?? {}, run.scope());
  for (let attempt = 1; ; attempt++) {
    const key = stepKey(run.input.taskId, node.id, attempt, visit);
    let failure: StepErrorDetails;
    try {
      return await dispatchUntilAnswered(run, node, attempt, key, params);
    } catch (err) {
      if (!(err instanceof StepFailed)) throw err;
      failure = err.details;
    }
    recordArtifacts(run, node, attempt, key, failure.artifacts);
    // The PC stopped in the middle of this attempt: the node's onInterrupt decides, not the
    // retry policy (runs started before the patch, and `retry`, keep to the policy).
    if (failure.code === STEP_INTERRUPTED && node.onInterrupt && node.onInterrupt !== 'retry' && patched('on-interrupt')) {
      await interrupted(run, node, node.onInterrupt, attempt, key, failure);
      if (heldAtBoundary(run)) await boundary(run);
      continue;
    }
    const retryable = retry.retryableCodes
      ? retry.retryableCodes.includes(failure.code)
      : failure.retryable === true;
    const willRetry = retryable && attempt < retry.maxAttempts;
    const error: RunError = { code: failure.code, message: failure.message, step_id: node.id };
    run.markStep(key, 'failed', { error });
    run.events.emit('step.failed', { step_id: node.id, attempt, key, error, will_retry: willRetry });
    if (!willRetry) throw new RunFailed(error);
    await run.events.flush();
    const delay = Math.min(
      retry.initialIntervalMs * Math.pow(retry.backoffCoefficient, attempt - 1),
      retry.maxIntervalMs,
    );
    // Backoff that cancel interrupts.
    await condition(() => run.state.cancelRequested, delay);
    if (heldAtBoundary(run)) await boundary(run);
  }
}

/**
 * An attempt the PC stopped in, under `onInterrupt: fail` or `ask`: fails the run (RunFailed),
 * or, when the person answers "run it again", returns so the caller starts the next attempt.
 */
async function interrupted(
  run: Run, node: DefinitionNode, policy: 'fail' | 'ask', attempt: number, key: string, failure: StepErrorDetails,
): Promise<void> {
  const label = node.name ?? node.id;
  const error: RunError = { code: failure.code, message: failure.message, step_id: node.id };
  run.markStep(key, 'failed', { error });
  run.events.emit('step.failed', { step_id: node.id, attempt, key, error, will_retry: false, on_interrupt: policy });
  if (policy === 'fail') throw new RunFailed({ ...error, message: `the PC stopped during ${label}; the step is not run again` });
  const timeoutMs = DEFAULT_APPROVAL_TIMEOUT_MS;
  const { decided, decision } = await awaitDecision(run, {
    step_id: node.id, name: node.name ?? null, message: `the PC stopped during ${label}; run it again?`,
    timeout_ms: timeoutMs, interrupted: { key, attempt },
  });
  if (decided && decision) decidedBy(run, node.id, decision);
  else run.events.emit('run.approval_decided', { step_id: node.id, approved: false, by: 'timeout', client: null, comment: null, timed_out: true });
  if (run.state.status === 'running') run.setStatus('running', null);
  if (decision?.approved) return;
  throw new RunFailed({
    ...error,
    message: decision
      ? `the PC stopped during ${label}; not run again (${decision.by} said no${decision.comment ? `: ${decision.comment}` : ''})`
      : `the PC stopped during ${label}; no answer within ${timeoutMs} ms, not run again`,
  });
}

/** Dispatches one attempt, again with the same key whenever the device is lost mid-step. */
async function dispatchUntilAnswered(run: Run, node: DefinitionNode, attempt: number, key: string, params: unknown): Promise<unknown> {
  const { state, events } = run;
  for (let delivery = 1; ; delivery++) {
    // awaitDevice (an async call, its promises) only when the answering node is unknown.
    const deviceNode = knownNode(run) ?? (await awaitDevice(run));
    if (heldAtBoundary(run)) await boundary(run);
    beginStep(run, node, attempt, key, delivery);
    // The events so far ride with the dispatch (the monitor bridge reads them there).
    const carried = events.take();
    let answer: DispatchResult;
    try {
      answer = await dispatch(run, node, deviceNode, attempt, key, params, carried);
    } catch (err) {
      const failure = dispatchFailure(run, node, err);
      run.inflight = null;
      run.lastNode = null;
      // Whether the dispatch activity wrote them is unknown: write them again (idempotent by seq).
      events.record(carried);
      if (failure instanceof DeviceLost) {
        run.deviceSignalled = false;
        continue;
      }
      throw failure;
    }
    const { output, mirrored, artifacts } = answer;
    if (!mirrored) events.record(carried);
    run.lastNode = deviceNode;
    run.inflight = null;
    run.completedSteps++;
    state.progress = run.totalSteps ? Math.round((run.completedSteps / run.totalSteps) * 100) : 100;
    run.markStep(key, 'completed', { output });
    recordArtifacts(run, node, attempt, key, artifacts);
    events.emit('step.completed', { step_id: node.id, attempt, key, output, progress: state.progress });
    return output;
  }
}

/**
 * One `step.artifact` event per file the device attached, before the step's outcome. Behind
 * `patched('step-artifacts')` (docs/workflow-changes.md); asked only when there are artifacts,
 * which the activity's result in history says, so replay takes the same path.
 */
function recordArtifacts(run: Run, node: DefinitionNode, attempt: number, key: string, artifacts: StepArtifactRef[] | undefined): void {
  if (!artifacts?.length || !patched('step-artifacts')) return;
  for (const a of artifacts) run.events.emit('step.artifact', { step_id: node.id, attempt, key, ...a });
}

function beginStep(run: Run, node: DefinitionNode, attempt: number, key: string, delivery: number): void {
  const { state } = run;
  state.currentNode = node.id;
  const step: StepState = { step_id: node.id, name: node.name, type: node.type, attempt, key, status: 'running' };
  const existing = state.steps.findIndex((s) => s.key === key);
  if (existing >= 0) state.steps[existing] = step;
  else state.steps.push(step);
  run.events.emit('step.dispatched', {
    step_id: node.id, name: node.name ?? null, type: node.type, attempt, key, delivery,
  });
  run.details();
}

/**
 * Schedules the dispatch activity in the run's step scope and returns its promise: not async, so
 * the step costs no promises of its own here (its caller awaits the activity's).
 */
function dispatch(
  run: Run,
  node: DefinitionNode,
  deviceNode: string,
  attempt: number,
  key: string,
  params: unknown,
  events: RunEvent[],
): Promise<DispatchResult> {
  const steps = proxyActivities<DeviceStepActivities>({
    taskQueue: deviceStepQueue(deviceNode),
    // The node holding the socket is gone if nobody picks the task up: locate the device again.
    scheduleToStartTimeout: '15s',
    // The dispatch activity enforces the step timeout itself (and aborts the step); this is a backstop.
    startToCloseTimeout: stepTimeoutMs(node) + 30_000,
    heartbeatTimeout: '20s',
    retry: { maximumAttempts: 1 },
    cancellationType: ActivityCancellationType.TRY_CANCEL,
    summary: `${node.name ?? node.id} · ${node.type} · attempt ${attempt}`,
  });
  // One scope for every dispatch of the run: it is cancelled once, when the run is.
  const scope = (run.stepScope ??= new DirectScope());
  run.inflight = { key, deviceNode, scope };
  return scope.run(() =>
    steps.dispatchStep({
      taskId: run.input.taskId,
      deviceId: run.input.deviceId,
      stepId: node.id,
      name: node.name,
      type: node.type,
      attempt,
      key,
      params,
      timeoutMs: stepTimeoutMs(node),
      ...(node.heartbeatTimeoutMs ? { heartbeatTimeoutMs: node.heartbeatTimeoutMs } : {}),
      events,
    }),
  );
}

function stepTimeoutMs(node: DefinitionNode): number {
  return node.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
}

/**
 * What a failed dispatch means for the run: the device lost (DeviceLost: send again), the step
 * failed (StepFailed: the retry policy decides), the run cancelled (RunCancelled), or, for
 * anything else, the error itself.
 */
function dispatchFailure(run: Run, node: DefinitionNode, err: unknown): unknown {
  if (isCancellation(err)) return run.state.cancelRequested ? new RunCancelled() : err;
  if (!(err instanceof ActivityFailure)) return err;
  const cause = err.cause;
  if (cause instanceof ApplicationFailure && cause.type === FailureType.DeviceDisconnected) return new DeviceLost();
  if (cause instanceof TimeoutFailure) {
    if (cause.timeoutType === 'START_TO_CLOSE') {
      return new StepFailed({ code: 'STEP_TIMEOUT', message: `step timed out after ${stepTimeoutMs(node)} ms` });
    }
    return new DeviceLost(); // heartbeat or schedule-to-start: the API node is gone
  }
  if (cause instanceof ApplicationFailure && cause.type === FailureType.StepError) {
    const d = (cause.details?.[0] ?? {}) as Partial<StepErrorDetails>;
    return new StepFailed({
      code: typeof d.code === 'string' ? d.code : 'STEP_ERROR',
      message: typeof d.message === 'string' ? d.message : cause.message,
      retryable: d.retryable === true,
      ...(Array.isArray(d.artifacts) && d.artifacts.length ? { artifacts: d.artifacts } : {}),
    });
  }
  return new StepFailed({ code: 'DISPATCH_FAILED', message: cause?.message ?? err.message });
}
