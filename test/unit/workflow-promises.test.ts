// The step path's promise budget (docs/design.md, "a step path with few promises"): each promise
// a run creates in the workflow sandbox costs a stack trace the Temporal SDK's hook captures and
// source-maps. Counted by V8's own promise hook while recorded histories replay
// (scripts/workflow-promises.ts, in plain Node). A change that adds awaits or async helpers to
// the path of a plain run shows here; raise the budget only knowingly.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';

/** The 3-step linear run: 43 promises (the SDK's own among them: run start, 4 activities). */
const LINEAR_BUDGET = 45;

describe('promises a run creates in the workflow sandbox', () => {
  it('a 3-step linear run keeps to its budget', async () => {
    const script = resolve(import.meta.dirname, '..', '..', 'scripts', 'workflow-promises.ts');
    const stdout = await new Promise<string>((res, rej) => {
      execFile(process.execPath, [script, 'linear-completed'], { encoding: 'utf8' }, (err, out) => (err ? rej(err) : res(out)));
    });
    const [name, count] = stdout.trim().split(' ');
    expect(name).toBe('linear-completed');
    // Not zero: the hook saw the run at all.
    expect(Number(count)).toBeGreaterThan(10);
    expect(Number(count)).toBeLessThanOrEqual(LINEAR_BUDGET);
  }, 120_000);
});
