// One run's state, shared by the parts of the workflow (graph walk, device step, lane and
// presence, control): what the run is doing, what it has produced, and how it says so (status,
// search attribute, the Temporal UI's details line, events). Plain fields and method calls:
// the parts create no promises to talk to each other.
import {
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  upsertSearchAttributes,
  type CancellationScope,
} from '@temporalio/workflow';
import type { PersistenceActivities } from '../activities/types.ts';
import { SA } from './search-attributes.ts';
import type { ApprovalDecision, ControlRequest, RunState, RunStatus, StepState, TaskRunInput } from './api.ts';
import { isDeviceStep, type DefinitionNode } from './definition.ts';
import { EventLog } from './event-log.ts';
import type { DirectScope } from './scope.ts';

/** The device step being dispatched: what a control action or a cancel reaches. */
export interface InFlight {
  key: string;
  deviceNode: string;
  scope: CancellationScope;
}

export interface LoopState {
  index: number;
  items: unknown[] | null;
  total: number;
}

export class Run {
  readonly input: TaskRunInput;
  readonly nodes: Map<string, DefinitionNode>;
  readonly persist: PersistenceActivities;
  /** The same activities run in this worker, inside the workflow task (the last write). */
  readonly local: PersistenceActivities;
  readonly state: RunState = {
    status: 'pending',
    reason: 'queued',
    currentNode: null,
    progress: 0,
    paused: false,
    cancelRequested: false,
    steps: [],
    lastSeq: 0,
  };
  readonly outputs: Record<string, unknown> = {};
  readonly events: EventLog;

  // ---- lane and presence
  laneGranted = false;
  /** Set by `deviceOnline`: a run waiting for its device looks again. */
  deviceSignalled = false;
  /** The API node that answered the last step: the next goes there without a lookup. */
  lastNode: string | null;

  // ---- the device step
  inflight: InFlight | null = null;
  /** The scope every dispatch runs in (cancelled once, when the run is). */
  stepScope: DirectScope | null = null;
  readonly totalSteps: number;
  completedSteps = 0;

  // ---- control
  cancelledBy: ControlRequest | null = null;
  approval: { nodeId: string; decision: ApprovalDecision | null } | null = null;

  // ---- the graph walk
  /** How often each node has run (a loop visits a node again; the visit is part of its key). */
  readonly visits = new Map<string, number>();
  readonly loops = new Map<string, LoopState>();
  loopScope: { node: string; index: number; item: unknown; count: number } | null = null;
  /** Runs started from the `run-budget` patch on: the walk keeps to the bounds in bounds.ts. */
  budgeted = false;
  /** Node visits so far (budgeted runs). */
  nodeVisits = 0;
  /** Control-node visits since the walk last gave Temporal the workflow task back. */
  controlVisitsInTask = 0;

  /** The TaskStatus search attribute as last written (at the start, then by upserts). */
  private indexedStatus: RunStatus;

  constructor(input: TaskRunInput) {
    this.input = input;
    this.nodes = new Map(input.definition.nodes.map((n) => [n.id, n]));
    if (input.resumeFrom) Object.assign(this.outputs, input.resumeFrom.outputs);
    this.totalSteps = input.definition.nodes.filter(isDeviceStep).length;
    this.indexedStatus = input.statusAtStart ?? 'pending';
    this.lastNode = input.gatewayHint ?? null;
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
    this.events = new EventLog(this.state, input.taskId, this.persist);
  }

  setStatus(status: RunStatus, reason: string | null): void {
    this.state.status = status;
    this.state.reason = reason;
    // An update only when the indexed status differs: a run started as `running` spares one.
    if (status !== this.indexedStatus) {
      this.indexedStatus = status;
      upsertSearchAttributes([{ key: SA.TaskStatus, value: status }]);
    }
    this.details();
  }

  /** What operators read on the run's page in the Temporal UI. */
  details(): void {
    const s = this.state;
    const step = s.steps.find((x) => x.key && x.status === 'running');
    const lines = [`**${s.status}**${s.reason ? ` (${s.reason})` : ''} · progress ${s.progress}%`];
    if (step) lines.push(`step \`${step.step_id}\` (${step.type}) attempt ${step.attempt}`);
    setCurrentDetails(lines.join('\n\n'));
  }

  /** Updates the state of a step attempt (by its key), as the `state` query shows it. */
  markStep(key: string, status: StepState['status'], patch: Partial<StepState>): void {
    const step = this.state.steps.find((s) => s.key === key);
    if (step) Object.assign(step, { status, ...patch });
  }

  finished(): boolean {
    return this.state.status === 'completed' || this.state.status === 'failed' || this.state.status === 'cancelled';
  }

  /** What templates and conditions see: earlier outputs, the run's parameters, the loop. */
  scope(): Record<string, unknown> {
    return { ...this.outputs, params: this.input.parameters, loop: this.loopScope };
  }
}
