// Recorded histories read back as the system reads them: a file of test/histories/ as a history,
// and its run events as the monitors' bridge (src/ws/history-stream.ts) maps them, for the tests
// that check that reading (history-map) and compare the chaos oracle's own with it.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import type { temporal } from '@temporalio/proto';
import { mapHistoryEvent } from '../../src/ws/history-stream.ts';
import type { RunEvent } from '../../workflows/api.ts';
import { HISTORIES_DIR } from './histories.ts';

export type History = temporal.api.history.v1.IHistory;

export const loadHistory = (file: string): History =>
  historyFromJSON(JSON.parse(readFileSync(resolve(HISTORIES_DIR, file), 'utf8')));

/** The run's events as the bridge reads them from a history at hand (readRunEvents' way). */
export function systemRunEvents(history: History): RunEvent[] {
  const out: RunEvent[] = [];
  let terminal = false;
  for (const e of history.events ?? []) {
    for (const ev of mapHistoryEvent(e, out.length ? out[out.length - 1].seq : 0, terminal)) {
      out.push(ev);
      if (['run.completed', 'run.failed', 'run.cancelled'].includes(ev.kind)) terminal = true;
    }
  }
  return out;
}
