// Determinism: every recorded history in test/histories/ replays against the current
// workflow code (scripts/replay-histories.ts, in plain Node). A change that would break runs
// in flight fails here; guard it with patched() (see docs/workflow-changes.md).
// Re-record with RECORD_HISTORIES=1 and the recording integration tests (engine, slice).
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import * as workflows from '../../workflows/index.ts';
import { HISTORIES_DIR } from '../helpers/histories.ts';

const SHAPES = [
  'linear-completed', 'paused-resumed', 'cancelled-mid-step', 'step-failed', 'step-retried', 'approval-approved',
  'approval-timeout', 'loop-condition-wait', 'lane-queued', 'device-reconnect', 'retry-from-failed-step',
  'scheduled-run',
  // fault paths: an offline device waited for, a silent step aborted, a step the PC stopped in
  'offline-wait', 'heartbeat-timeout', 'interrupted-retried', 'interrupted-failed', 'interrupted-asked',
];

/** The workflow type a recorded history ran (from its first event, as the temporal CLI writes it). */
function workflowTypeOf(file: string): string {
  const history = JSON.parse(readFileSync(resolve(HISTORIES_DIR, file), 'utf8'));
  return history.events[0].workflowExecutionStartedEventAttributes.workflowType.name;
}

describe('recorded histories replay against the current workflow code', () => {
  const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json')).sort();

  it('has histories of the run shapes we care about', () => {
    for (const shape of SHAPES) expect(files).toContain(`${shape}.json`);
  });

  it('has a history of every workflow type the task workers run', () => {
    const recorded = new Set(files.map(workflowTypeOf));
    expect([...recorded].sort()).toEqual(Object.keys(workflows).sort());
  });

  it('replays each without nondeterminism', async () => {
    const script = resolve(import.meta.dirname, '..', '..', 'scripts', 'replay-histories.ts');
    const { code, stdout } = await new Promise<{ code: number; stdout: string }>((res) => {
      execFile(process.execPath, [script], { encoding: 'utf8' }, (err, stdout) =>
        res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }));
    });
    expect(stdout.trim().split('\n').sort()).toEqual(files.map((f) => `ok ${f}`));
    expect(code).toBe(0);
  }, 120_000);
});
