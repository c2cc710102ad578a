// taskRunWorkflow: one run of a workflow definition on one PC device.
// Deterministic code only: no Node APIs, no I/O; time and timers come from the SDK.
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  FailureType,
  type DispatchResult,
  type GatewayActivities,
  type PersistenceActivities,
  type StepErrorDetails,
} from '../activities/types.ts';
import { PRIORITY_RANK, SA } from '../src/temporal/search-attributes.ts';
import {
  approvalSignal,
  cancelSignal,
  controlUpdate,
  deviceOnlineSignal,
  laneGrantedSignal,
  gatewayQueue,
  pauseSignal,
  resumeSignal,
  stateQuery,
  stepKey,
  type ApprovalDecision,
  type ControlAction,
  type ControlRequest,
  type EventKind,
  type RunError,
  type RunEvent,
  type RunState,
  type RunStatus,
  type StepState,
  type TaskRunInput,
  type TaskRunResult,
} from './api.ts';
import {
  isDeviceStep,
  nextNodeId,
  outgoing,
  render,
  type DefinitionNode,
  type RetrySpec,
} from './definition.ts';
import { evaluate, type Expr } from './expression.ts';

const DEFAULT_STEP_TIMEOUT_MS = 10 * 60 * 1000;
const DEFAULT_RETRY: Required<Omit<RetrySpec, 'retryableCodes'>> = {
  maxAttempts: 3,
  initialIntervalMs: 1000,
  backoffCoefficient: 2,
  maxIntervalMs: 60_000,
};
/** How often a run waiting for its device re-checks presence, in case a signal was missed. */
const PRESENCE_RECHECK_MS = 60_000;
/** A lane grant normally arrives within this; later, the run says it waits for a busy device. */
const LANE_GRACE_MS = 1000;
/** A run waiting in a table lane asks again this often, in case a grant's signal was lost. */
const LANE_RECHECK_MS = 5 * 60_000;
const DEFAULT_LOOP_MAX = 1000;
/**
 * Runs started from this patch on: a step's dispatch carries the events before it (the gateway
 * writes them to the mirror beside the step, so no activity of its own), event batches are
 * recorded side by side (the mirror folds them in seq order), the API node that answered the
 * last step gets the next without a lookup, the submitter queues the run on its lane, and the
 * lane is released beside the last write (docs/benchmarks.md, F1/F2).
 */
const PIPELINED_STEPS = 'pipelined-steps';
/**
 * Runs started from this patch on (pipelined too; they record this marker alone) walk the steps
 * with fewer promises: the step boundary and the device lookup are awaited only when there is
 * something to wait for, a device step skips the generic node wrapper, and one cancellation
 * scope serves every dispatch. The SDK captures a source-mapped stack trace for each promise a
 * workflow creates (the UI's stack trace query): a third of a run's workflow-thread time before
 * this (docs/benchmarks.md, F1). Fewer awaits can reorder commands, hence the patch.
 */
const LEAN_STEPS = 'lean-steps';

/** The run ends `cancelled` (a cancel signal was honoured). */
class RunCancelled extends Error {}

/** The run ends `failed` with this error. */
class RunFailed extends Error {
  readonly error: RunError;
  constructor(error: RunError) {
    super(error.message);
    this.error = error;
  }
}

/** A device step whose socket (or API node) was lost: dispatch it again, same key. */
class DeviceLost extends Error {}

interface InFlight {
  key: string;
  gatewayNode: string;
  scope: CancellationScope;
}

export async function taskRunWorkflow(input: TaskRunInput): Promise<TaskRunResult> {
  return new TaskRun(input).execute();
}

class TaskRun {
  private readonly input: TaskRunInput;
  private readonly nodes: Map<string, DefinitionNode>;
  private readonly persist: PersistenceActivities;
  /** The same activities run in this worker, inside the workflow task (the last write). */
  private readonly local: PersistenceActivities;
  private readonly state: RunState = {
    status: 'pending',
    reason: 'queued',
    currentNode: null,
    progress: 0,
    paused: false,
    cancelRequested: false,
    steps: [],
    lastSeq: 0,
  };
  private readonly outputs: Record<string, unknown> = {};
  private pending: RunEvent[] = [];
  private recorder: Promise<void> = Promise.resolve();
  private readonly background: Promise<unknown>[] = [];
  private inflight: InFlight | null = null;
  private deviceSignalled = false;
  private cancelledBy: ControlRequest | null = null;
  private readonly totalSteps: number;
  private completedSteps = 0;
  /** How often each node has run (a loop visits a node again; the visit is part of its key). */
  private readonly visits = new Map<string, number>();
  private readonly loops = new Map<string, { index: number; items: unknown[] | null; total: number }>();
  private loopScope: { node: string; index: number; item: unknown; count: number } | null = null;
  private laneAsked = false;
  private laneGranted = false;
  private approval: { nodeId: string; decision: ApprovalDecision | null } | null = null;
  /** Decided once per run (see PIPELINED_STEPS); runs begun on older code keep their path. */
  private pipelined = false;
  /** Decided once per run (see LEAN_STEPS). */
  private lean = false;
  /** Lean runs: the scope every dispatch runs in (cancelled once, when the run is). */
  private stepScope: CancellationScope | null = null;
  /** The TaskStatus search attribute as last written (at the start, then by upserts). */
  private indexedStatus: RunStatus;
  /** The API node that answered the last step: the next goes there without a lookup. */
  private lastNode: string | null = null;

  constructor(input: TaskRunInput) {
    this.input = input;
    this.nodes = new Map(input.definition.nodes.map((n) => [n.id, n]));
    if (input.resumeFrom) Object.assign(this.outputs, input.resumeFrom.outputs);
    this.totalSteps = input.definition.nodes.filter(isDeviceStep).length;
    this.indexedStatus = input.statusAtStart ?? 'pending';
    this.persist = proxyActivities<PersistenceActivities>({
      taskQueue: input.taskQueue,
      startToCloseTimeout: '30s',
      // PostgreSQL may be briefly away: keep trying, the events are in history already.
      retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s' },
    });
    this.local = proxyLocalActivities<PersistenceActivities>({
      startToCloseTimeout: '30s',
      retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s' },
    });
  }

  async execute(): Promise<TaskRunResult> {
    this.lean = patched(LEAN_STEPS);
    this.pipelined = this.lean || patched(PIPELINED_STEPS);
    if (this.pipelined) this.lastNode = this.input.gatewayHint ?? null;
    this.registerHandlers();
    this.emit('run.pending', { reason: 'queued' });
    try {
      await this.acquireLane();
      await this.walk();
      this.setStatus('completed', null);
      this.emit('run.completed', { outputs: this.outputs });
      await this.settle();
      return { status: 'completed', outputs: this.outputs };
    } catch (err) {
      if (err instanceof RunFailed) {
        this.setStatus('failed', err.error.code);
        this.emit('run.failed', { error: err.error, outputs: this.outputs });
        await this.settle();
        return { status: 'failed', outputs: this.outputs, error: err.error };
      }
      if (err instanceof RunCancelled || isCancellation(err)) {
        // Cancelled from the Temporal UI / API (workflow cancellation) or by our cancel signal:
        // clean up in a scope that cannot itself be cancelled.
        const byOperator = !(err instanceof RunCancelled);
        await CancellationScope.nonCancellable(async () => {
          this.abortInFlight('cancelled');
          this.setStatus('cancelled', byOperator ? 'cancelled_in_temporal' : 'cancelled');
          this.emit('run.cancelled', {
            by: this.cancelledBy?.by ?? 'operator',
            client: this.cancelledBy?.client ?? 'temporal',
            reason: this.cancelledBy?.reason ?? null,
            outputs: this.outputs,
          });
          await this.settle();
        });
        if (byOperator) throw err;
        return { status: 'cancelled', outputs: this.outputs };
      }
      throw err; // a bug: fail the workflow task so a fixed worker can carry on
    }
  }

  // ---- the step graph -------------------------------------------------------------------

  private async walk(): Promise<void> {
    const from = this.input.resumeFrom?.nodeId;
    let node = from ? this.nodes.get(from) : this.input.definition.nodes.find((n) => n.type === 'start');
    if (!node) throw new RunFailed({ code: 'INVALID_DEFINITION', message: `no node to start from (${from ?? 'start'})` });
    while (node) {
      if (this.awaitsBoundary()) await this.boundary();
      if (node.type === 'end') return;
      let branch: string | undefined;
      if (this.lean && isDeviceStep(node)) this.outputs[node.id] = await this.runDeviceStep(node, this.visit(node));
      else branch = await this.runNode(node);
      const next = nextNodeId(this.input.definition, node.id, branch);
      node = next === undefined ? undefined : this.nodes.get(next);
    }
  }

  /** Runs one node; returns the branch label to follow, if the node branches. */
  private async runNode(node: DefinitionNode): Promise<string | undefined> {
    const visit = this.visit(node);
    if (isDeviceStep(node)) {
      this.outputs[node.id] = await this.runDeviceStep(node, visit);
      return undefined;
    }
    const params = (node.params ?? {}) as Record<string, unknown>;
    switch (node.type) {
      case 'start':
        return undefined;
      case 'condition': {
        const result = evaluate(params.if as Expr, this.scope());
        this.outputs[node.id] = { result };
        return String(result);
      }
      case 'wait': {
        const ms = Number(render(params.durationMs, this.scope()) ?? 0);
        this.state.currentNode = node.id;
        this.details();
        // A durable timer that cancel interrupts.
        await condition(() => this.state.cancelRequested, Math.max(0, ms));
        if (this.state.cancelRequested) throw new RunCancelled();
        this.outputs[node.id] = { waited_ms: ms };
        return undefined;
      }
      case 'approval':
        return this.runApproval(node, params);
      case 'loop':
        return this.runLoop(node, params);
      default:
        throw new RunFailed({
          code: 'UNSUPPORTED_NODE',
          message: `node type "${node.type}" is not supported by this engine version`,
          step_id: node.id,
        });
    }
  }

  /** Counts a visit of the node (a loop visits a node again); returns its number. */
  private visit(node: DefinitionNode): number {
    const visit = (this.visits.get(node.id) ?? 0) + 1;
    this.visits.set(node.id, visit);
    return visit;
  }

  /** Waits for approve / reject (REST, the phone) or the timeout; follows the decision's edge. */
  private async runApproval(node: DefinitionNode, params: Record<string, unknown>): Promise<string | undefined> {
    const timeoutMs = typeof params.timeoutMs === 'number' ? params.timeoutMs : 24 * 3600 * 1000;
    const onTimeout = (params.onTimeout as 'approve' | 'reject' | 'fail' | undefined) ?? 'reject';
    this.approval = { nodeId: node.id, decision: null };
    this.state.currentNode = node.id;
    this.setStatus(this.state.paused ? 'paused' : 'running', 'waiting_approval');
    this.emit('run.waiting_approval', {
      step_id: node.id, name: node.name ?? null,
      message: render(params.message ?? null, this.scope()), timeout_ms: timeoutMs,
    });
    await this.flush();
    const decided = await condition(() => this.approval?.decision !== null || this.state.cancelRequested, timeoutMs);
    const decision = this.approval?.decision ?? null;
    this.approval = null;
    if (this.state.cancelRequested) throw new RunCancelled();
    let approved: boolean;
    if (decided && decision) {
      approved = decision.approved;
      this.emit('run.approval_decided', {
        step_id: node.id, approved, by: decision.by, client: decision.client ?? null,
        comment: decision.comment ?? null, timed_out: false,
      });
    } else {
      if (onTimeout === 'fail') {
        throw new RunFailed({ code: 'APPROVAL_TIMEOUT', message: `no decision within ${timeoutMs} ms`, step_id: node.id });
      }
      approved = onTimeout === 'approve';
      this.emit('run.approval_decided', { step_id: node.id, approved, by: 'timeout', client: null, comment: null, timed_out: true });
    }
    if (this.state.status === 'running') this.setStatus('running', null);
    this.outputs[node.id] = { approved, comment: decision?.comment ?? null, by: decision?.by ?? 'timeout', timed_out: !decided };
    const labels = outgoing(this.input.definition, node.id).map((e) => e.when);
    if (approved) return labels.includes('approved') ? 'approved' : undefined;
    if (labels.includes('rejected')) return 'rejected';
    throw new RunFailed({
      code: decided ? 'APPROVAL_REJECTED' : 'APPROVAL_TIMEOUT',
      message: decided ? `rejected by ${decision?.by}${decision?.comment ? `: ${decision.comment}` : ''}` : 'approval timed out',
      step_id: node.id,
    });
  }

  /** A bounded repeat (`count`) or for-each (`items`); `{{loop.index}}`, `{{loop.item}}` inside. */
  private runLoop(node: DefinitionNode, params: Record<string, unknown>): string {
    let st = this.loops.get(node.id);
    if (!st) {
      const max = typeof params.maxIterations === 'number' ? params.maxIterations : DEFAULT_LOOP_MAX;
      const rendered = params.items !== undefined ? render(params.items, this.scope()) : null;
      if (rendered !== null && !Array.isArray(rendered)) {
        throw new RunFailed({ code: 'LOOP_ITEMS_NOT_A_LIST', message: 'loop items did not resolve to a list', step_id: node.id });
      }
      const items = rendered as unknown[] | null;
      const total = items ? items.length : Number(render(params.count, this.scope()) ?? 0);
      if (!Number.isInteger(total) || total < 0 || total > max) {
        throw new RunFailed({ code: 'LOOP_BOUND', message: `loop would run ${total} times (allowed 0 to ${max})`, step_id: node.id });
      }
      st = { index: 0, items, total };
      this.loops.set(node.id, st);
    }
    if (st.index < st.total) {
      this.loopScope = { node: node.id, index: st.index, item: st.items ? st.items[st.index] : st.index, count: st.total };
      st.index++;
      return 'body';
    }
    this.loops.delete(node.id);
    this.outputs[node.id] = { iterations: st.total };
    this.loopScope = null;
    return 'done';
  }

  /** Whether to await the step boundary: always on older runs, on lean ones when held or ending. */
  private awaitsBoundary(): boolean {
    return !this.lean || this.state.paused || this.state.cancelRequested;
  }

  /** Step boundary: pause holds the run here; cancel ends it. */
  private async boundary(): Promise<void> {
    if (this.state.cancelRequested) throw new RunCancelled();
    if (this.state.paused) {
      await this.flush();
      await condition(() => !this.state.paused || this.state.cancelRequested);
      if (this.state.cancelRequested) throw new RunCancelled();
    }
  }

  private scope(): Record<string, unknown> {
    return { ...this.outputs, params: this.input.parameters, loop: this.loopScope };
  }

  private async runDeviceStep(node: DefinitionNode, visit: number): Promise<unknown> {
    const retry = { ...DEFAULT_RETRY, ...node.retry };
    const params = render(node.params ?? {}, this.scope());
    for (let attempt = 1; ; attempt++) {
      const key = stepKey(this.input.taskId, node.id, attempt, visit);
      let failure: StepErrorDetails;
      try {
        return await this.dispatchUntilAnswered(node, attempt, key, params);
      } catch (err) {
        if (!(err instanceof StepErrorSignal)) throw err;
        failure = err.details;
      }
      const retryable = retry.retryableCodes
        ? retry.retryableCodes.includes(failure.code)
        : failure.retryable === true;
      const willRetry = retryable && attempt < retry.maxAttempts;
      const error: RunError = { code: failure.code, message: failure.message, step_id: node.id };
      this.markStep(key, 'failed', { error });
      this.emit('step.failed', { step_id: node.id, attempt, key, error, will_retry: willRetry });
      if (!willRetry) throw new RunFailed(error);
      await this.flush();
      const delay = Math.min(
        retry.initialIntervalMs * Math.pow(retry.backoffCoefficient, attempt - 1),
        retry.maxIntervalMs,
      );
      // Backoff that cancel interrupts.
      await condition(() => this.state.cancelRequested, delay);
      if (this.awaitsBoundary()) await this.boundary();
    }
  }

  /** Dispatches one attempt, again with the same key whenever the device is lost mid-step. */
  private async dispatchUntilAnswered(
    node: DefinitionNode,
    attempt: number,
    key: string,
    params: unknown,
  ): Promise<unknown> {
    for (let delivery = 1; ; delivery++) {
      // Lean runs call awaitDevice (an async call, its promises) only when the node is unknown.
      const gatewayNode = (this.lean ? this.knownNode() : null) ?? (await this.awaitDevice());
      if (this.awaitsBoundary()) await this.boundary();
      this.beginStep(node, attempt, key, delivery);
      // Pipelined: the events so far ride with the dispatch (the monitor bridge reads them there).
      let carried: RunEvent[] = [];
      if (this.pipelined) [carried, this.pending] = [this.pending, []];
      else await this.flush();
      try {
        const output = await this.dispatch(node, gatewayNode, attempt, key, params, carried);
        this.lastNode = gatewayNode;
        this.inflight = null;
        this.completedSteps++;
        this.state.progress = this.totalSteps ? Math.round((this.completedSteps / this.totalSteps) * 100) : 100;
        this.markStep(key, 'completed', { output });
        this.emit('step.completed', { step_id: node.id, attempt, key, output, progress: this.state.progress });
        return output;
      } catch (err) {
        this.inflight = null;
        this.lastNode = null;
        // Whether the gateway wrote them is unknown: write them again (idempotent by seq).
        this.record(carried);
        if (err instanceof DeviceLost) {
          this.deviceSignalled = false;
          continue;
        }
        throw err;
      }
    }
  }

  private beginStep(node: DefinitionNode, attempt: number, key: string, delivery: number): void {
    this.state.currentNode = node.id;
    const step: StepState = { step_id: node.id, name: node.name, type: node.type, attempt, key, status: 'running' };
    const existing = this.state.steps.findIndex((s) => s.key === key);
    if (existing >= 0) this.state.steps[existing] = step;
    else this.state.steps.push(step);
    this.emit('step.dispatched', {
      step_id: node.id, name: node.name ?? null, type: node.type, attempt, key, delivery,
    });
    this.details();
  }

  private markStep(key: string, status: StepState['status'], patch: Partial<StepState>): void {
    const step = this.state.steps.find((s) => s.key === key);
    if (step) Object.assign(step, { status, ...patch });
  }

  private async dispatch(
    node: DefinitionNode,
    gatewayNode: string,
    attempt: number,
    key: string,
    params: unknown,
    events: RunEvent[],
  ): Promise<unknown> {
    const timeoutMs = node.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
    const gateway = proxyActivities<GatewayActivities>({
      taskQueue: gatewayQueue(gatewayNode),
      // The node holding the socket is gone if nobody picks the task up: locate the device again.
      scheduleToStartTimeout: '15s',
      // The gateway enforces the step timeout itself (and aborts the step); this is a backstop.
      startToCloseTimeout: timeoutMs + 30_000,
      heartbeatTimeout: '20s',
      retry: { maximumAttempts: 1 },
      cancellationType: ActivityCancellationType.TRY_CANCEL,
      summary: `${node.name ?? node.id} · ${node.type} · attempt ${attempt}`,
    });
    const scope = this.lean ? (this.stepScope ??= new CancellationScope()) : new CancellationScope();
    this.inflight = { key, gatewayNode, scope };
    try {
      const result = await scope.run(() =>
        gateway.dispatchStep({
          taskId: this.input.taskId,
          deviceId: this.input.deviceId,
          stepId: node.id,
          name: node.name,
          type: node.type,
          attempt,
          key,
          params,
          timeoutMs,
          // Only when set: an extra field in the activity input would change recorded histories.
          ...(node.heartbeatTimeoutMs ? { heartbeatTimeoutMs: node.heartbeatTimeoutMs } : {}),
          ...(events.length ? { events } : {}),
        }),
      );
      if (!events.length) return result;
      const { output, mirrored } = result as DispatchResult;
      if (!mirrored) this.record(events);
      return output;
    } catch (err) {
      if (isCancellation(err)) {
        if (this.state.cancelRequested) throw new RunCancelled();
        throw err;
      }
      if (err instanceof ActivityFailure) {
        const cause = err.cause;
        if (cause instanceof ApplicationFailure && cause.type === FailureType.DeviceDisconnected) {
          throw new DeviceLost();
        }
        if (cause instanceof TimeoutFailure) {
          if (cause.timeoutType === 'START_TO_CLOSE') {
            throw new StepErrorSignal({ code: 'STEP_TIMEOUT', message: `step timed out after ${timeoutMs} ms` });
          }
          throw new DeviceLost(); // heartbeat or schedule-to-start: the API node is gone
        }
        if (cause instanceof ApplicationFailure && cause.type === FailureType.StepError) {
          const d = (cause.details?.[0] ?? {}) as Partial<StepErrorDetails>;
          throw new StepErrorSignal({
            code: typeof d.code === 'string' ? d.code : 'STEP_ERROR',
            message: typeof d.message === 'string' ? d.message : cause.message,
            retryable: d.retryable === true,
          });
        }
        throw new StepErrorSignal({ code: 'DISPATCH_FAILED', message: cause?.message ?? err.message });
      }
      throw err;
    }
  }

  // ---- the device ----------------------------------------------------------------------

  /** Queues the run on its device's lane and waits for its turn: one run per PC at a time. */
  private async acquireLane(): Promise<void> {
    if (this.input.lane) return this.awaitTableLane();
    this.laneAsked = true;
    const ask = () => this.persist.acquireLane({
      deviceId: this.input.deviceId,
      taskId: this.input.taskId,
      workflowId: workflowInfo().workflowId,
      priorityRank: PRIORITY_RANK[this.input.priority],
      submittedAt: this.input.submittedAt,
    });
    // Pipelined runs were queued by their submitter; asking again is harmless (idempotent per task).
    const askedBySubmitter = this.pipelined && this.input.laneRequested === true;
    if (!askedBySubmitter) await ask();
    if (await condition(() => this.laneGranted || this.state.cancelRequested, LANE_GRACE_MS)) {
      if (this.state.cancelRequested) throw new RunCancelled();
      return;
    }
    if (this.state.status !== 'paused') this.setStatus('pending', 'device_busy');
    this.emit('run.pending', { reason: 'device_busy' });
    // The device is busy, or the submitter's request was lost: ask, and say so meanwhile.
    if (askedBySubmitter) await Promise.all([ask(), this.flush()]);
    else await this.flush();
    await condition(() => this.laneGranted || this.state.cancelRequested);
    if (this.state.cancelRequested) throw new RunCancelled();
  }

  /**
   * The table lane (src/domain/device-lanes.ts) the submitter asked: held from the start, or
   * queued until `laneGranted`. If no grant comes in a second (the submitter's release raced
   * the start of this workflow), and every few minutes after, the run asks again: idempotent,
   * and the answer says whether it holds the device.
   */
  private async awaitTableLane(): Promise<void> {
    if (this.input.lane === 'granted') return;
    const ask = async () => {
      const { granted } = await this.persist.acquireDeviceLane({
        deviceId: this.input.deviceId,
        taskId: this.input.taskId,
        workflowId: workflowInfo().workflowId,
        priorityRank: PRIORITY_RANK[this.input.priority],
        submittedAt: this.input.submittedAt,
      });
      if (granted) this.laneGranted = true;
    };
    const wait = async (ms?: number) => {
      await condition(() => this.laneGranted || this.state.cancelRequested, ms);
      if (this.state.cancelRequested) throw new RunCancelled();
      return this.laneGranted;
    };
    if (await wait(LANE_GRACE_MS)) return;
    if (this.state.status !== 'paused') this.setStatus('pending', 'device_busy');
    this.emit('run.pending', { reason: 'device_busy' });
    await Promise.all([ask(), this.flush()]);
    while (!this.laneGranted) {
      if (await wait(LANE_RECHECK_MS)) return;
      await ask();
    }
  }

  /** Resolves with the API node holding the device's socket; waits durably while it is offline. */
  private async awaitDevice(): Promise<string> {
    // A device that moved or went away since is caught by the dispatch (DeviceLost) or by
    // deviceOnline (it reconnected), both of which forget this.
    const known = this.knownNode();
    if (known) return known;
    const deadline = Date.now() + this.input.offlineTimeoutMs;
    for (;;) {
      if (this.state.cancelRequested) throw new RunCancelled();
      // Cleared before looking: a device that connects from here on wakes the wait below
      // (its node writes presence before it signals, so an earlier signal is seen by the look).
      this.deviceSignalled = false;
      // Pipelined: whatever is buffered (run.pending) goes out with the step's dispatch, or
      // below if the device turns out to be offline.
      if (!this.pipelined) await this.flush();
      const where = await this.persist.locateDevice(this.input.deviceId);
      if (where.online && where.nodeId) {
        this.markStarted();
        return where.nodeId;
      }
      if (this.state.reason !== 'device_offline') {
        if (this.state.status === 'paused') this.state.reason = 'device_offline';
        else this.setStatus('pending', 'device_offline');
        this.emit('run.pending', { reason: 'device_offline' });
        await this.flush();
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new RunFailed({
          code: 'DEVICE_OFFLINE_TIMEOUT',
          message: `device stayed offline for ${Math.round(this.input.offlineTimeoutMs / 1000)} s`,
        });
      }
      await condition(() => this.deviceSignalled || this.state.cancelRequested, Math.min(left, PRESENCE_RECHECK_MS));
    }
  }

  /** Pipelined runs: the API node that answered the last step (the run is started there); else null. */
  private knownNode(): string | null {
    if (!this.pipelined || !this.lastNode) return null;
    this.markStarted();
    return this.lastNode;
  }

  /** The device is there: a pending run starts (again, after waiting for it). */
  private markStarted(): void {
    if (this.state.status !== 'pending') return;
    const after = this.state.reason === 'device_offline' ? { after: 'device_offline' } : {};
    this.setStatus('running', null);
    this.emit('run.started', after);
  }

  /** Forwards a control action to the device for the step in flight (best effort). */
  private control(action: 'pause' | 'resume' | 'abort', reason?: string, order?: number): void {
    const f = this.inflight;
    if (!f) return;
    const gateway = proxyActivities<GatewayActivities>({
      taskQueue: gatewayQueue(f.gatewayNode),
      scheduleToCloseTimeout: '10s',
      retry: { maximumAttempts: 2 },
      summary: `step/${action} ${f.key}`,
    });
    this.track(gateway.controlStep({ deviceId: this.input.deviceId, key: f.key, action, reason, ...(order ? { order } : {}) }));
  }

  private abortInFlight(reason: string): void {
    const f = this.inflight;
    if (!f) return;
    this.control('abort', reason);
    this.markStep(f.key, 'cancelled', {});
    f.scope.cancel();
    this.inflight = null;
  }

  // ---- signals ---------------------------------------------------------------------------

  private registerHandlers(): void {
    setHandler(stateQuery, () => this.state);
    setHandler(deviceOnlineSignal, () => {
      this.deviceSignalled = true;
      this.lastNode = null;
    });
    setHandler(laneGrantedSignal, () => {
      this.laneGranted = true;
    });
    setHandler(approvalSignal, (decision) => {
      // Only the approval the run waits at now; a late or duplicate decision is ignored.
      if (this.approval && this.approval.decision === null) this.approval.decision = decision;
    });
    setHandler(pauseSignal, (req) => this.act('pause', req));
    setHandler(resumeSignal, (req) => this.act('resume', req));
    setHandler(cancelSignal, (req) => this.act('cancel', req));
    setHandler(controlUpdate, (action, req) => {
      this.act(action, req);
      return this.state.status;
    }, {
      validator: (action: ControlAction, _req: ControlRequest) => {
        if (!this.allows(action)) {
          throw new Error(`cannot ${action} a run that is ${this.state.cancelRequested ? 'being cancelled' : this.state.status}`);
        }
      },
    });
  }

  /** Whether the run's state allows a control action now (a signal that does not is ignored). */
  private allows(action: ControlAction): boolean {
    if (this.finished() || this.state.cancelRequested) return false;
    if (action === 'pause') return !this.state.paused;
    if (action === 'resume') return this.state.paused;
    return true;
  }

  private act(action: ControlAction, req: ControlRequest): void {
    if (!this.allows(action)) return;
    switch (action) {
      case 'pause':
        this.state.paused = true;
        this.setStatus('paused', 'paused_by_user');
        this.emit('run.paused', { by: req.by, client: req.client ?? null, reason: req.reason ?? null });
        this.control('pause', req.reason, this.state.lastSeq);
        break;
      case 'resume':
        this.state.paused = false;
        this.setStatus(this.inflight || this.state.currentNode ? 'running' : 'pending', null);
        this.emit('run.resumed', { by: req.by, client: req.client ?? null });
        this.control('resume', undefined, this.state.lastSeq);
        break;
      case 'cancel':
        this.state.cancelRequested = true;
        this.cancelledBy = req;
        this.emit('run.cancel_requested', { by: req.by, client: req.client ?? null, reason: req.reason ?? null });
        this.abortInFlight(req.reason ?? 'cancelled');
        break;
    }
    this.track(this.flush());
  }

  private finished(): boolean {
    return this.state.status === 'completed' || this.state.status === 'failed' || this.state.status === 'cancelled';
  }

  // ---- status, events, persistence ----------------------------------------------------------

  private setStatus(status: RunStatus, reason: string | null): void {
    this.state.status = status;
    this.state.reason = reason;
    if (status !== this.indexedStatus) {
      this.indexedStatus = status;
      upsertSearchAttributes([{ key: SA.TaskStatus, value: status }]);
    }
    this.details();
  }

  /** What operators read on the run's page in the Temporal UI. */
  private details(): void {
    const s = this.state;
    const step = s.steps.find((x) => x.key && x.status === 'running');
    const lines = [`**${s.status}**${s.reason ? ` (${s.reason})` : ''} · progress ${s.progress}%`];
    if (step) lines.push(`step \`${step.step_id}\` (${step.type}) attempt ${step.attempt}`);
    setCurrentDetails(lines.join('\n\n'));
  }

  private emit(kind: EventKind, data: Record<string, unknown>): void {
    this.state.lastSeq += 1;
    this.pending.push({ seq: this.state.lastSeq, kind, at: Date.now(), data });
  }

  /**
   * Writes buffered events through the persistence activity, in order. Its scheduled input is
   * what the monitor bridge reads from history, so each event is durable once flushed.
   */
  private flush(): Promise<void> {
    if (this.pending.length > 0) {
      const events = this.pending;
      this.pending = [];
      this.record(events);
    }
    return this.recorder;
  }

  /** Records a batch; `recorder` settles once every batch so far is written. */
  private record(events: RunEvent[]): void {
    if (events.length === 0) return;
    const write = () =>
      CancellationScope.nonCancellable(() => this.persist.recordRunEvents({ taskId: this.input.taskId, events }));
    if (this.pipelined) {
      // Scheduled now, so history holds the batches in seq order; the mirror orders the writes.
      const written = write();
      this.recorder = Promise.all([this.recorder, written]).then(() => undefined);
    } else {
      this.recorder = this.recorder.then(write);
    }
  }

  private track(p: Promise<unknown>): void {
    // Best-effort work must not fail the workflow task with an unhandled rejection.
    this.background.push(p.catch(() => undefined));
  }

  /** Flushes every event and waits for best-effort work before the run ends. */
  private async settle(): Promise<void> {
    if (this.input.lane) {
      // (Table lanes came after pipelined steps: such a run is pipelined.) The last events and
      // the lane's release in one local activity: the next run gets the device once this one's
      // last events are written, and the run completes in the same workflow task.
      const events = this.pending;
      this.pending = [];
      const last = CancellationScope.nonCancellable(() =>
        this.local.finishRun({ taskId: this.input.taskId, deviceId: this.input.deviceId, events }));
      await Promise.all([this.recorder, last, ...this.background]);
      return;
    }
    const lane = { deviceId: this.input.deviceId, taskId: this.input.taskId };
    const release = () => CancellationScope.nonCancellable(() => this.persist.releaseLane(lane));
    if (this.pipelined) {
      await Promise.all([this.flush(), this.laneAsked ? release() : undefined]);
    } else {
      await this.flush();
      if (this.laneAsked) await release();
    }
    await Promise.all(this.background);
  }
}

/** A device's answer was an error (or the step timed out). */
class StepErrorSignal extends Error {
  readonly details: StepErrorDetails;
  constructor(details: StepErrorDetails) {
    super(details.message);
    this.details = details;
  }
}
