// Replays every recorded history in test/histories/ against the current workflow code and
// prints one line per file ("ok <file>" or "FAIL <file>: <why>"); exits 1 if any fails.
// Plain Node on purpose: protobuf's JSON conversion does not survive Jest's module sandbox.
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_OPTIONS } from '../src/task-worker.ts';

Runtime.install({
  logger: new DefaultLogger('ERROR'),
  telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
});
const root = resolve(import.meta.dirname, '..');
const dir = resolve(root, 'test', 'histories');
const noop = () => undefined;
const logger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };
const bundle = await bundleWorkflowCode({ ...WORKFLOW_BUNDLE_OPTIONS, logger });

let failed = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
  const history = JSON.parse(readFileSync(resolve(dir, file), 'utf8'));
  try {
    await Worker.runReplayHistory({ workflowBundle: bundle, replayName: file }, history, file.replace(/\.json$/, ''));
    console.log(`ok ${file}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
}
process.exit(failed ? 1 : 0);
