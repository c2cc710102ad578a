// The run events a task's Temporal history holds, decoded for the chaos oracle from the raw
// history (Temporal's client fetches it, Temporal's payload converter decodes the payloads),
// without the system's own reader (src/ws/history-stream.ts): a check of the mirror against
// history must not read history through the code it checks.
//
// Where the events are, as docs/design.md states the contract: the workflow numbers them and
// writes them through activities whose input carries them (`recordRunEvents`, and `dispatchStep`
// for the events a step's dispatch takes along), so they are in the activity's scheduled event;
// the last ones go through the local activity `finishRun`, whose result answers them, in its
// marker. A batch may be scheduled again (a retried dispatch): the same seq must then carry the
// same event.
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';

export interface HistoryRunEvent {
  seq: number;
  kind: string;
  at: number;
  data: Record<string, unknown>;
}

const CARRIED_IN_INPUT = new Set(['recordRunEvents', 'dispatchStep']);
const CARRIED_IN_LOCAL_RESULT = new Set(['finishRun']);

type Payload = Parameters<typeof defaultPayloadConverter.fromPayload>[0];
const decode = <T>(payload: unknown): T => defaultPayloadConverter.fromPayload<T>(payload as Payload);

/** Object keys sorted, so that two equal events compare equal whatever their key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

/**
 * The run's events in seq order, and what is wrong with them as history holds them: a seq
 * carried twice with different contents, a gap in 1..n.
 */
export async function historyRunEvents(handle: WorkflowHandle): Promise<{ events: HistoryRunEvent[]; problems: string[] }> {
  return runEventsOfHistory(await handle.fetchHistory());
}

/** As historyRunEvents, from a history at hand. */
export function runEventsOfHistory(history: temporal.api.history.v1.IHistory): { events: HistoryRunEvent[]; problems: string[] } {
  const bySeq = new Map<number, HistoryRunEvent>();
  const problems: string[] = [];
  const take = (events: HistoryRunEvent[] | undefined, where: string) => {
    for (const ev of events ?? []) {
      const seen = bySeq.get(ev.seq);
      if (!seen) bySeq.set(ev.seq, ev);
      else if (canonical(seen) !== canonical(ev)) problems.push(`seq ${ev.seq} carried twice with different contents (${where})`);
    }
  };
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled && CARRIED_IN_INPUT.has(scheduled.activityType?.name ?? '')) {
      const input = scheduled.input?.payloads?.[0];
      if (input) take(decode<{ events?: HistoryRunEvent[] }>(input).events, `${scheduled.activityType?.name} input, event ${e.eventId}`);
    }
    const marker = e.markerRecordedEventAttributes;
    // The SDK's local activity marker: its details' `data` names the activity, `result` is its answer.
    if (marker?.markerName === 'core_local_activity') {
      const meta = marker.details?.data?.payloads?.[0];
      const result = marker.details?.result?.payloads?.[0];
      const type = meta ? decode<{ activity_type?: string }>(meta).activity_type : undefined;
      if (type && CARRIED_IN_LOCAL_RESULT.has(type) && result) take(decode<{ events?: HistoryRunEvent[] }>(result).events, `${type} result, event ${e.eventId}`);
    }
  }
  const events = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  const gap = events.findIndex((ev, i) => ev.seq !== i + 1);
  if (gap >= 0) problems.push(`seq ${gap + 1} missing from history (next is ${events[gap].seq})`);
  return { events, problems };
}
