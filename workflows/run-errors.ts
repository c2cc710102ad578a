// How the parts of a run tell each other it ends, or that a step must be sent again. Thrown
// inside the workflow and caught by taskRunWorkflow (the run's end) or by the device step.
import type { RunError } from './api.ts';
import type { StepErrorDetails } from './step-failures.ts';

/** The run ends `cancelled` (a cancel signal was honoured). */
export class RunCancelled extends Error {}

/** The run ends `failed` with this error. */
export class RunFailed extends Error {
  readonly error: RunError;
  constructor(error: RunError) {
    super(error.message);
    this.error = error;
  }
}

/** A device step whose socket (or API node) was lost: dispatch it again, same key. */
export class DeviceLost extends Error {}

/** A device's answer was an error (or the step timed out): the step may be retried. */
export class StepFailed extends Error {
  readonly details: StepErrorDetails;
  constructor(details: StepErrorDetails) {
    super(details.message);
    this.details = details;
  }
}
