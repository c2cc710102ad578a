// Activity contracts shared by the workflow (type-only imports) and the implementations.
import type { LaneTicket, RunEvent, StepArtifactRef } from '../workflows/api.ts';

export interface RecordEventsInput {
  taskId: string;
  events: RunEvent[];
}

/** A run's last write: its final events, then its device's table lane given up. */
export interface FinishRunInput {
  taskId: string;
  deviceId: string;
  events: RunEvent[];
}

export interface DeviceLocation {
  online: boolean;
  nodeId: string | null;
}

export interface DispatchStepInput {
  taskId: string;
  deviceId: string;
  stepId: string;
  name?: string;
  type: string;
  attempt: number;
  key: string;
  params: unknown;
  timeoutMs: number;
  /** Fail the step (retryable) when the device shows no progress for this long. */
  heartbeatTimeoutMs?: number;
  /**
   * The run's events since its last write, up to this step's `step.dispatched`: the activity
   * writes them to the mirror beside the dispatch. Monitors read them from history.
   */
  events: RunEvent[];
}

/** What dispatchStep answers. */
export interface DispatchResult {
  output: unknown;
  /** Whether the carried events reached the mirror; if not, the run records them itself. */
  mirrored: boolean;
  /** What the device attached to the step; absent when nothing. */
  artifacts?: StepArtifactRef[];
}

export interface ControlStepInput {
  deviceId: string;
  key: string;
  action: 'pause' | 'resume' | 'abort';
  reason?: string;
  /**
   * Pause and resume: the seq of the run's event for this action. A pause and a resume sent close
   * together are two activities that may run in either order; the activity drops a frame older
   * than one it already sent for the step.
   */
  order?: number;
}

export interface PersistenceActivities {
  recordRunEvents(input: RecordEventsInput): Promise<void>;
  /**
   * The last write of a run, run as a local activity (no activity task of its own).
   * A local activity's input is not kept in history, so it answers the events it wrote: the
   * monitors' bridge reads them from its marker.
   */
  finishRun(input: FinishRunInput): Promise<{ events: RunEvent[] }>;
  locateDevice(deviceId: string): Promise<DeviceLocation>;
  /** Asks for the device's table lane: held now, or queued until `laneGranted`. Idempotent. */
  acquireDeviceLane(input: LaneTicket): Promise<{ granted: boolean }>;
  /** Submits the task a schedule fired for (once per firing); null when the schedule is gone. */
  submitScheduledTask(input: { scheduleId: string; firingId: string }): Promise<{ taskId: string | null }>;
  /** Deletes up to `limit` step artifacts' files older than the retention; how many it deleted. */
  deleteExpiredArtifacts(input: { limit: number }): Promise<number>;
}

export interface DeviceStepActivities {
  dispatchStep(input: DispatchStepInput): Promise<DispatchResult>;
  controlStep(input: ControlStepInput): Promise<boolean>;
}

/** Delivers one notification to one target (src/domain/webhook-delivery.ts); retried by Temporal. */
export interface DeliveryActivities {
  /**
   * One HTTP attempt; throws (retryable) unless the receiver answered 2xx. Refused targets are not
   * retried. With `permit`, the attempt first takes one of its account's permits and, when they
   * are all held, makes no request and answers `{ waiting: true }`.
   */
  deliverNotification(input: { deliveryId: string; permit?: true }): Promise<{ statusCode: number } | { skipped: string } | { waiting: true }>;
  /** The delivery gave up: its retries are spent or its target is refused. */
  failDelivery(input: { deliveryId: string; error: string }): Promise<void>;
}
