// The monitors' bridge reads a run's events back from its history: from the inputs of the
// activities that carry them and from the result of the run's last write, a local activity
// (its input is not in history). Checked on recorded histories of every generation.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { HISTORIES_DIR } from '../helpers/histories.ts';
import { loadHistory, systemRunEvents } from '../helpers/history-reading.ts';

const eventsOf = (file: string) => systemRunEvents(loadHistory(file));

describe('run events read back from history', () => {
  for (const file of ['linear-completed.json', 'step-failed.json', 'cancelled-mid-step.json', 'device-reconnect.json', 'run-budget-exceeded.json']) {
    it(`${file}: seq 1..n without a gap, ending with the run's end`, () => {
      const events = eventsOf(file);
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(['run.completed', 'run.failed', 'run.cancelled']).toContain(events.at(-1)!.kind);
    });
  }

  it('finds the last events in the finishRun marker of a table-lane run', () => {
    const raw = readFileSync(resolve(HISTORIES_DIR, 'linear-completed.json'), 'utf8');
    expect(raw).toContain('core_local_activity');
    expect(eventsOf('linear-completed.json').at(-1)!.kind).toBe('run.completed');
  });
});
