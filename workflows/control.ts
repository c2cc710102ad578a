// Control of a run from outside: pause, resume and cancel (signals, or the `control` Update
// whose validator refuses what the run's state does not allow), approvals, presence and lane
// signals; the frames a pause, resume or cancel sends to the step in flight; and the step
// boundary where a pause holds the run and a cancel ends it.
import { condition, proxyActivities, setHandler } from '@temporalio/workflow';
import type { DeviceStepActivities } from '../activities/types.ts';
import {
  approvalSignal,
  cancelSignal,
  controlUpdate,
  deviceOnlineSignal,
  deviceStepQueue,
  laneGrantedSignal,
  pauseSignal,
  resumeSignal,
  stateQuery,
  type ControlAction,
  type ControlRequest,
} from './api.ts';
import { RunCancelled } from './run-errors.ts';
import type { Run } from './run.ts';

export function registerHandlers(run: Run): void {
  const { state } = run;
  setHandler(stateQuery, () => state);
  setHandler(deviceOnlineSignal, () => {
    run.deviceSignalled = true;
    run.lastNode = null;
  });
  setHandler(laneGrantedSignal, () => {
    run.laneGranted = true;
  });
  setHandler(approvalSignal, (decision) => {
    // Only the approval the run waits at now; a late or duplicate decision is ignored.
    if (run.approval && run.approval.decision === null) run.approval.decision = decision;
  });
  setHandler(pauseSignal, (req) => act(run, 'pause', req));
  setHandler(resumeSignal, (req) => act(run, 'resume', req));
  setHandler(cancelSignal, (req) => act(run, 'cancel', req));
  setHandler(controlUpdate, (action, req) => {
    act(run, action, req);
    return state.status;
  }, {
    validator: (action: ControlAction, _req: ControlRequest) => {
      if (!allows(run, action)) {
        throw new Error(`cannot ${action} a run that is ${state.cancelRequested ? 'being cancelled' : state.status}`);
      }
    },
  });
}

/** Whether the run's state allows a control action now (a signal that does not is ignored). */
function allows(run: Run, action: ControlAction): boolean {
  if (run.finished() || run.state.cancelRequested) return false;
  if (action === 'pause') return !run.state.paused;
  if (action === 'resume') return run.state.paused;
  return true;
}

function act(run: Run, action: ControlAction, req: ControlRequest): void {
  if (!allows(run, action)) return;
  const { state, events } = run;
  switch (action) {
    case 'pause':
      state.paused = true;
      run.setStatus('paused', 'paused_by_user');
      events.emit('run.paused', { by: req.by, client: req.client ?? null, reason: req.reason ?? null });
      sendToStep(run, 'pause', req.reason, state.lastSeq);
      break;
    case 'resume':
      state.paused = false;
      run.setStatus(run.inflight || state.currentNode ? 'running' : 'pending', null);
      events.emit('run.resumed', { by: req.by, client: req.client ?? null });
      sendToStep(run, 'resume', undefined, state.lastSeq);
      break;
    case 'cancel':
      state.cancelRequested = true;
      run.cancelledBy = req;
      events.emit('run.cancel_requested', { by: req.by, client: req.client ?? null, reason: req.reason ?? null });
      abortInFlight(run, req.reason ?? 'cancelled');
      break;
  }
  events.track(events.flush());
}

/**
 * Forwards a control action to the device for the step in flight (best effort). A pause or a
 * resume carries the seq of its event as `order`: the two are separate activities that may run
 * in either order, and the controlStep activity drops a frame older than one it already sent.
 */
function sendToStep(run: Run, action: 'pause' | 'resume' | 'abort', reason?: string, order?: number): void {
  const f = run.inflight;
  if (!f) return;
  const steps = proxyActivities<DeviceStepActivities>({
    taskQueue: deviceStepQueue(f.deviceNode),
    scheduleToCloseTimeout: '10s',
    retry: { maximumAttempts: 2 },
    summary: `step/${action} ${f.key}`,
  });
  run.events.track(steps.controlStep({ deviceId: run.input.deviceId, key: f.key, action, reason, ...(order ? { order } : {}) }));
}

/** Aborts the step in flight on the device and cancels its dispatch. */
export function abortInFlight(run: Run, reason: string): void {
  const f = run.inflight;
  if (!f) return;
  sendToStep(run, 'abort', reason);
  run.markStep(f.key, 'cancelled', {});
  f.scope.cancel();
  run.inflight = null;
}

/**
 * Whether the step boundary has anything to do: only a pause or a cancel pending makes the run
 * await it (each await costs promises on the step path, see docs/design.md).
 */
export function heldAtBoundary(run: Run): boolean {
  return run.state.paused || run.state.cancelRequested;
}

/** Step boundary: pause holds the run here; cancel ends it. */
export async function boundary(run: Run): Promise<void> {
  const { state } = run;
  if (state.cancelRequested) throw new RunCancelled();
  if (state.paused) {
    await run.events.flush();
    await condition(() => !state.paused || state.cancelRequested);
    if (state.cancelRequested) throw new RunCancelled();
  }
}
