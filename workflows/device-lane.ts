// deviceLaneWorkflow: a PC runs one GUI automation at a time. One long-lived lane per device
// (workflow id `device-<deviceId>`) grants the device to one run at a time, in priority order
// (high, medium, low), then by submission time. A paused run keeps the device.
import {
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  laneAcquireSignal,
  laneGrantedSignal,
  laneReleaseSignal,
  laneStateQuery,
  type LaneRequest,
  type LaneState,
} from './api.ts';

/** Continue-as-new well before the history gets large (signals add events). */
const MAX_HISTORY_EVENTS = 2000;

export interface LaneInput {
  deviceId: string;
  /** Carried over a continue-as-new. */
  state?: LaneState;
}

export async function deviceLaneWorkflow(input: LaneInput): Promise<void> {
  const state: LaneState = input.state ?? { holder: null, queue: [] };
  let arrivals = state.queue.reduce((m, r) => Math.max(m, r.arrival), 0);
  let dirty = true;

  const order = (a: LaneRequest, b: LaneRequest) =>
    b.priorityRank - a.priorityRank || a.submittedAt - b.submittedAt || a.arrival - b.arrival;

  setHandler(laneStateQuery, () => state);
  setHandler(laneAcquireSignal, (req) => {
    if (state.holder?.taskId === req.taskId || state.queue.some((r) => r.taskId === req.taskId)) {
      // Asked again (activity retry, worker restart): the holder is told again.
      if (state.holder?.taskId === req.taskId) state.holder.notified = false;
    } else {
      state.queue.push({ ...req, arrival: ++arrivals, notified: false });
      state.queue.sort(order);
    }
    dirty = true;
  });
  setHandler(laneReleaseSignal, ({ taskId }) => {
    if (state.holder?.taskId === taskId) state.holder = null;
    state.queue = state.queue.filter((r) => r.taskId !== taskId);
    dirty = true;
  });

  for (;;) {
    await condition(() => dirty);
    dirty = false;
    if (!state.holder && state.queue.length) {
      state.holder = state.queue.shift()!;
      state.holder.notified = false;
    }
    const holder = state.holder;
    if (holder && !holder.notified) {
      holder.notified = true;
      try {
        await getExternalWorkflowHandle(holder.workflowId).signal(laneGrantedSignal, { deviceId: input.deviceId });
      } catch {
        // The run is gone (terminated, deleted): give the device to the next one.
        if (state.holder === holder) state.holder = null;
        dirty = true;
      }
    }
    if (!dirty && (workflowInfo().historyLength > MAX_HISTORY_EVENTS || workflowInfo().continueAsNewSuggested)) {
      await continueAsNew<typeof deviceLaneWorkflow>({ deviceId: input.deviceId, state });
    }
  }
}
