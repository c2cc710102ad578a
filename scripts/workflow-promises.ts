// Counts the promises a run creates inside the workflow sandbox, by replaying recorded histories
// (test/histories/<name>.json, default linear-completed) a few times each and counting V8's
// promise-hook `init` calls for promises of the sandbox's realm. Each such promise costs a stack
// trace captured and source-mapped by the Temporal SDK's own hook (docs/design.md, "a step path
// with few promises"). Prints "<name> <promises per run>" per history.
// Plain Node, like replay-histories.ts: protobuf's JSON conversion does not survive Jest's sandbox.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promiseHooks } from 'node:v8';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_OPTIONS } from '../src/task-worker.ts';

Runtime.install({
  logger: new DefaultLogger('ERROR'),
  telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
});
const names = process.argv.slice(2).length ? process.argv.slice(2) : ['linear-completed'];
const RUNS = 5;
const noop = () => undefined;
const logger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };
const workflowBundle = await bundleWorkflowCode({ ...WORKFLOW_BUNDLE_OPTIONS, logger });

let counting = false;
let count = 0;
// A promise of this realm is the worker's own; the sandbox's have another Promise constructor.
promiseHooks.onInit((p) => {
  if (counting && (p as Promise<unknown>).constructor !== Promise) count++;
});

for (const name of names) {
  const history = JSON.parse(readFileSync(resolve(import.meta.dirname, '..', 'test', 'histories', `${name}.json`), 'utf8'));
  const replay = async (runs: number) => {
    const histories = (async function* () {
      for (let i = 0; i < runs; i++) yield { history, workflowId: `${name}-${i}` };
    })();
    // Replay workers run the workflow in this thread (debug mode), so the hook above sees it.
    for await (const r of Worker.runReplayHistories({ workflowBundle, replayName: name }, histories)) if (r.error) throw r.error;
  };
  await replay(1); // the shared modules load once, outside the count
  count = 0;
  counting = true;
  await replay(RUNS);
  counting = false;
  console.log(`${name} ${count / RUNS}`);
}
process.exit(0);
