// taskRunWorkflow: one run of a workflow definition on one PC device, from its lane to its
// last write. Its parts: run.ts (the run's state), graph-walk.ts, device-step.ts,
// lane-and-presence.ts, control.ts, event-log.ts.
// Deterministic code only: no Node APIs, no I/O; time and timers come from the SDK.
import { CancellationScope, isCancellation, patched } from '@temporalio/workflow';
import type { TaskRunInput, TaskRunResult } from './api.ts';
import { abortInFlight, registerHandlers } from './control.ts';
import { walk } from './graph-walk.ts';
import { awaitLane } from './lane-and-presence.ts';
import { RunCancelled, RunFailed } from './run-errors.ts';
import { Run } from './run.ts';

const RUN_BUDGET = 'run-budget';

export async function taskRunWorkflow(input: TaskRunInput): Promise<TaskRunResult> {
  const run = new Run(input);
  // Node budget, yields in long walks, templated values checked against the literals' bounds
  // (docs/workflow-changes.md). Decided once, before the run's first command: by the input when
  // it says so (no marker in history), else by the patch, as runs started before the field.
  run.budgeted = input.budgeted === true || patched(RUN_BUDGET);
  const { events, outputs } = run;
  registerHandlers(run);
  events.emit('run.pending', { reason: 'queued' });
  try {
    const queued = awaitLane(run);
    if (queued) await queued;
    await walk(run);
    run.setStatus('completed', null);
    events.emit('run.completed', { outputs });
    await events.finish(run.local, input.deviceId);
    return { status: 'completed', outputs };
  } catch (err) {
    if (err instanceof RunFailed) {
      run.setStatus('failed', err.error.code);
      events.emit('run.failed', { error: err.error, outputs });
      await events.finish(run.local, input.deviceId);
      return { status: 'failed', outputs, error: err.error };
    }
    if (err instanceof RunCancelled || isCancellation(err)) {
      // Cancelled from the Temporal UI / API (workflow cancellation) or by our cancel signal:
      // clean up in a scope that cannot itself be cancelled.
      const byOperator = !(err instanceof RunCancelled);
      await CancellationScope.nonCancellable(async () => {
        abortInFlight(run, 'cancelled');
        run.setStatus('cancelled', byOperator ? 'cancelled_in_temporal' : 'cancelled');
        events.emit('run.cancelled', {
          by: run.cancelledBy?.by ?? 'operator',
          client: run.cancelledBy?.client ?? 'temporal',
          reason: run.cancelledBy?.reason ?? null,
          outputs,
        });
        await events.finish(run.local, input.deviceId);
      });
      if (byOperator) throw err;
      return { status: 'cancelled', outputs };
    }
    throw err; // a bug: fail the workflow task so a fixed worker can carry on
  }
}
