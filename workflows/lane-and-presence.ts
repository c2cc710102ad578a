// The run's device: its lane (a PC runs one automation at a time; the table lane in
// src/domain/device-lanes.ts, asked by the submitter) and its presence (which API node holds
// its socket; the run waits durably while it is offline).
import { condition, workflowInfo } from '@temporalio/workflow';
import { PRIORITY_RANK } from './search-attributes.ts';
import { RunCancelled, RunFailed } from './run-errors.ts';
import type { Run } from './run.ts';

/** How often a run waiting for its device re-checks presence, in case a signal was missed. */
const PRESENCE_RECHECK_MS = 60_000;
/** A lane grant normally arrives within this; later, the run says it waits for a busy device. */
const LANE_GRACE_MS = 1000;
/** A run waiting in a table lane asks again this often, in case a grant's signal was lost. */
const LANE_RECHECK_MS = 5 * 60_000;

/**
 * Waits for the lane the submitter asked: held from the start (`granted`: returns undefined, no
 * promise to await), or queued until `laneGranted`. If no grant comes in a second (the
 * submitter's release raced the start of this workflow), and every few minutes after, the run
 * asks again: idempotent, and the answer says whether it holds the device.
 */
export function awaitLane(run: Run): Promise<void> | undefined {
  return run.input.lane === 'granted' ? undefined : queueForLane(run);
}

async function queueForLane(run: Run): Promise<void> {
  const { input, state } = run;
  const ask = async () => {
    const { granted } = await run.persist.acquireDeviceLane({
      deviceId: input.deviceId,
      taskId: input.taskId,
      workflowId: workflowInfo().workflowId,
      priorityRank: PRIORITY_RANK[input.priority],
      submittedAt: input.submittedAt,
    });
    if (granted) run.laneGranted = true;
  };
  const wait = async (ms?: number) => {
    const answered = () => run.laneGranted || state.cancelRequested;
    await (ms === undefined ? condition(answered) : condition(answered, ms));
    if (state.cancelRequested) throw new RunCancelled();
    return run.laneGranted;
  };
  if (await wait(LANE_GRACE_MS)) return;
  if (state.status !== 'paused') run.setStatus('pending', 'device_busy');
  run.events.emit('run.pending', { reason: 'device_busy' });
  await Promise.all([ask(), run.events.flush()]);
  while (!run.laneGranted) {
    if (await wait(LANE_RECHECK_MS)) return;
    await ask();
  }
}

/**
 * The API node that answered the last step (the run is started there), or null when unknown.
 * Not async: the step path calls `awaitDevice` (and pays its promises) only when this is null.
 */
export function knownNode(run: Run): string | null {
  if (!run.lastNode) return null;
  markStarted(run);
  return run.lastNode;
}

/** Resolves with the API node holding the device's socket; waits durably while it is offline. */
export async function awaitDevice(run: Run): Promise<string> {
  // A device that moved or went away since is caught by the dispatch (DeviceLost) or by
  // deviceOnline (it reconnected), both of which forget the known node.
  const known = knownNode(run);
  if (known) return known;
  const { input, state } = run;
  const deadline = Date.now() + input.offlineTimeoutMs;
  for (;;) {
    if (state.cancelRequested) throw new RunCancelled();
    // Cleared before looking: a device that connects from here on wakes the wait below
    // (its node writes presence before it signals, so an earlier signal is seen by the look).
    run.deviceSignalled = false;
    // Whatever is buffered (run.pending) goes out with the step's dispatch, or below if the
    // device turns out to be offline.
    const where = await run.persist.locateDevice(input.deviceId);
    if (where.online && where.nodeId) {
      markStarted(run);
      return where.nodeId;
    }
    if (state.reason !== 'device_offline') {
      if (state.status === 'paused') state.reason = 'device_offline';
      else run.setStatus('pending', 'device_offline');
      run.events.emit('run.pending', { reason: 'device_offline' });
      await run.events.flush();
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new RunFailed({
        code: 'DEVICE_OFFLINE_TIMEOUT',
        message: `device stayed offline for ${Math.round(input.offlineTimeoutMs / 1000)} s`,
      });
    }
    await condition(() => run.deviceSignalled || state.cancelRequested, Math.min(left, PRESENCE_RECHECK_MS));
  }
}

/** The device is there: a pending run starts (again, after waiting for it). */
function markStarted(run: Run): void {
  const { state } = run;
  if (state.status !== 'pending') return;
  const after = state.reason === 'device_offline' ? { after: 'device_offline' } : {};
  run.setStatus('running', null);
  run.events.emit('run.started', after);
}
