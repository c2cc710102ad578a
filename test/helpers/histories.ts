// Recorded histories: with RECORD_HISTORIES=1, tests save the history of chosen runs under
// test/histories/ (in the temporal CLI's JSON form), and test/unit/replay.test.ts replays
// every saved one against the current workflow code, so a change that would break running
// workflows fails CI.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { TEMPORAL_BIN } from '../../src/temporal/dev-server.ts';
import { testEnv } from './env.ts';

export const HISTORIES_DIR = resolve(import.meta.dirname, '..', 'histories');

export async function recordHistory(workflowId: string, name: string): Promise<void> {
  if (!process.env.RECORD_HISTORIES) return;
  const json = execFileSync(TEMPORAL_BIN, [
    'workflow', 'show', '--workflow-id', workflowId, '--output', 'json', '--address', testEnv.temporalAddress,
  ], { encoding: 'utf8' });
  writeFileSync(resolve(HISTORIES_DIR, `${name}.json`), json);
}
