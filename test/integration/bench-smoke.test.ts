// `npm run bench` runs at all: its --smoke mode (tiny sizes, one data point each) as a child
// process in plain Node, with its own Temporal dev server and database, writing its report to
// a temp file. Checks the exit code and that every figure has a numeric ratio; no timing.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { runScript } from '../helpers/scripts.ts';

const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bench', () => {
  it('runs in --smoke mode and reports every figure with a ratio', async () => {
    const out = join(dir, 'benchmarks.md');
    const { code, output } = await runScript('scripts/bench/run.ts', ['--smoke', '--out', out]);
    if (code !== 0) throw new Error(`bench --smoke exited ${code}:\n${output.slice(-4000)}`);
    expect(existsSync(out)).toBe(true);

    const report = readFileSync(out, 'utf8');
    for (const figure of ['F1', 'F2', 'F3', 'F4', 'F5', 'F6 sockets', 'F6 runs', 'F7', 'F8']) {
      const row = report.split('\n').find((l) => l.startsWith(`| ${figure} |`));
      expect(row).toBeDefined();
      // Memory over the smoke mode's few sockets and runs is GC noise: the bare baseline can come
      // out at or below zero, and the bench then reports the ratio as n/a. Still measured.
      if (figure.startsWith('F6') && /\| \*\*n\/a\*\* \|/.test(row!) && /\| -?\d+(?:\.\d+)? KB \|/.test(row!)) continue;
      const ratio = /\*\*(-?\d+(?:\.\d+)?)x\*\*/.exec(row!)?.[1];
      if (ratio === undefined) throw new Error(`no numeric ratio for ${figure}: ${row}`);
      expect(Number.isFinite(Number(ratio))).toBe(true);
    }
    // F1's verdict is against the bare device baseline; Temporal alone is shown beside it.
    const f1 = report.split('\n').find((l) => l.startsWith('| F1 |'))!;
    expect(f1).toMatch(/\(vs Temporal alone: \d+\.\d+x\)/);
    expect(report).toMatch(/\| 1 \| Temporal alone \| \d/);
    // The run says what it ran on.
    expect(report).toMatch(/\| mode \| smoke \|/);
    expect(report).toMatch(/\| node \| v\d+/);
    expect(report).toMatch(/\| commit \| /);
  }, 300_000);
});
