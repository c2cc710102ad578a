// The chaos oracle's own reading of a run's events from history (scripts/lib/history-events.ts)
// against the system's (src/ws/history-stream.ts): two readers written apart agree on every
// recorded history of a run, and the oracle's one reports a history that lost a batch or
// carries a seq twice with different contents.
import { describe, expect, it } from '@jest/globals';
import { defaultPayloadConverter } from '@temporalio/common';
import { runEventsOfHistory } from '../../scripts/lib/history-events.ts';
import { readdirSync } from 'node:fs';
import { HISTORIES_DIR } from '../helpers/histories.ts';
import type { RunEvent } from '../../workflows/api.ts';
import { loadHistory, systemRunEvents, type History } from '../helpers/history-reading.ts';

const load = loadHistory;
const systemReading = systemRunEvents;

const runHistories = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json')).sort()
  .filter((f) => load(f).events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name === 'taskRunWorkflow');

/** The index of the first scheduled activity of `type` whose input carries events. */
function carrier(history: History, type: string): number {
  return (history.events ?? []).findIndex((e) => {
    const a = e.activityTaskScheduledEventAttributes;
    if (a?.activityType?.name !== type || !a.input?.payloads?.[0]) return false;
    return (defaultPayloadConverter.fromPayload<{ events?: unknown[] }>(a.input.payloads[0] as never).events ?? []).length > 0;
  });
}

describe('the chaos oracle reads run events from history', () => {
  it('has run histories to read', () => {
    expect(runHistories.length).toBeGreaterThanOrEqual(10);
  });

  for (const file of runHistories) {
    it(`${file}: the same events as the system reads, seq 1..n`, () => {
      const history = load(file);
      const { events, problems } = runEventsOfHistory(history);
      expect(problems).toEqual([]);
      expect(events.length).toBeGreaterThan(0);
      expect(events.map((e) => [e.seq, e.kind, e.at, e.data])).toEqual(systemReading(history).map((e) => [e.seq, e.kind, e.at, e.data]));
    });
  }

  it('reports a batch missing from history', () => {
    const history = load('linear-completed.json');
    const i = carrier(history, 'dispatchStep');
    expect(i).toBeGreaterThanOrEqual(0);
    history.events!.splice(i, 1);
    expect(runEventsOfHistory(history).problems).toEqual([expect.stringMatching(/^seq \d+ missing from history/)]);
  });

  it('reports a seq carried again with other contents', () => {
    const history = load('linear-completed.json');
    const i = carrier(history, 'dispatchStep');
    expect(i).toBeGreaterThanOrEqual(0);
    // The same dispatch scheduled again (as a retried one is), its first event's data changed.
    const again = structuredClone(history.events![i]);
    const attrs = again.activityTaskScheduledEventAttributes!;
    const input = defaultPayloadConverter.fromPayload<{ events: RunEvent[] }>(attrs.input!.payloads![0] as never);
    input.events[0].data = { ...input.events[0].data, changed: true };
    attrs.input!.payloads![0] = defaultPayloadConverter.toPayload(input) as never;
    history.events!.push(again);
    expect(runEventsOfHistory(history).problems).toEqual([expect.stringMatching(/^seq \d+ carried twice with different contents/)]);
    // Scheduled again unchanged, it is the same event: no problem.
    const same = load('linear-completed.json');
    same.events!.push(structuredClone(same.events![i]));
    expect(runEventsOfHistory(same).problems).toEqual([]);
  });
});
