// Determinism: every recorded history in test/histories/ replays against the current
// workflow code (scripts/replay-histories.ts, in plain Node). A change that would break runs
// in flight fails here; guard it with patched() (see docs/workflow-changes.md).
// Re-record with: RECORD_HISTORIES=1 npm test
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { HISTORIES_DIR } from '../helpers/histories.ts';

const SHAPES = [
  'linear-completed', 'paused-resumed', 'cancelled-mid-step', 'step-failed', 'step-retried', 'approval-approved',
  'approval-timeout', 'loop-condition-wait', 'lane-queued', 'device-reconnect', 'retry-from-failed-step',
];

describe('recorded histories replay against the current workflow code', () => {
  const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json')).sort();

  it('has histories of the run shapes we care about', () => {
    for (const shape of SHAPES) expect(files).toContain(`${shape}.json`);
    // Runs begun before the pipelined-steps patch (v1) and before table lanes (v2) keep their
    // paths (docs/workflow-changes.md).
    for (const shape of SHAPES) expect(files).toContain(`${shape}.v1.json`);
    for (const shape of SHAPES) expect(files).toContain(`${shape}.v2.json`);
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
