// The whole project type-checks (tsconfig.json: strict, no unused locals). Node runs the
// TypeScript by stripping types, so nothing else would catch a type error before it ships.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';

const root = resolve(import.meta.dirname, '..', '..');

describe('tsc', () => {
  it('finds no type errors in src, workflows, activities, workers, migrations, scripts and test', async () => {
    const out = await new Promise<{ code: number; text: string }>((done) => {
      execFile(resolve(root, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', 'tsconfig.json'], { cwd: root }, (err, stdout, stderr) =>
        done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, text: `${stdout}${stderr}` }));
    });
    expect(out.text).toBe('');
    expect(out.code).toBe(0);
  }, 120_000);
});
