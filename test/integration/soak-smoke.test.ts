// `npm run soak` runs and checks what it says: its --smoke mode (10 devices, 40 runs in flight,
// 100 monitors, 30 s) as a child process in plain Node, with its own Temporal dev server and
// database, writing its report to a temp file. The soak itself fails (exit 1) on any lost or
// duplicated event, wrong end state, failed request, unexpected close or handle leak.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { runScript } from '../helpers/scripts.ts';

const dir = mkdtempSync(join(tmpdir(), 'soak-smoke-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('soak', () => {
  it('runs in --smoke mode and passes every check', async () => {
    const out = join(dir, 'soak.md');
    const { code, output } = await runScript('scripts/soak.ts', ['--smoke', '--out', out]);
    if (code !== 0) throw new Error(`soak --smoke exited ${code}:\n${output.slice(-4000)}`);
    expect(output).toMatch(/PASSED: every check held/);
    expect(existsSync(out)).toBe(true);
    const report = readFileSync(out, 'utf8');
    expect(report).toMatch(/\*\*PASSED\*\*/);
    const runs = Number(/\| runs \| (\d+)/.exec(report)?.[1]);
    expect(runs).toBeGreaterThan(20);
    expect(report).toMatch(/\| failed requests \| 0 \|/);
  }, 240_000);
});
