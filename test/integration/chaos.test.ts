// A short fault run inside `npm test`: kill -9 of the task worker, the API node, the
// Temporal dev server and device clients during multi-step runs (scripts/chaos.ts, which
// `npm run test:chaos` runs longer). It checks every run's end state, that no step ran twice,
// that monitors saw every event once, and that PostgreSQL agrees with Temporal.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';

describe('faults', () => {
  it('runs end correctly through kill -9 of worker, API node, Temporal and devices', async () => {
    const script = resolve(import.meta.dirname, '..', '..', 'scripts', 'chaos.ts');
    const seed = process.env.CHAOS_SEED ?? '7';
    const { code, out } = await new Promise<{ code: number; out: string }>((res) => {
      execFile(process.execPath, [script, '--runs', '8', '--devices', '4', '--faults-for-s', '20', '--settle-s', '150', '--seed', seed],
        { encoding: 'utf8', timeout: 280_000 }, (err, stdout, stderr) =>
          res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }));
    });
    expect(out).toContain('all runs correct');
    expect(code).toBe(0);
  }, 300_000);
});
