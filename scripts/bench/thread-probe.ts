// Runs first in each Temporal workflow thread of the bench server (server.ts starts them
// through here): answers "measure" on its own message port with a full GC and the thread's
// heap statistics, then loads the real thread script. Temporal's own messages use parentPort,
// which this leaves alone.
import { createRequire } from 'node:module';
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { workerData, type MessagePort } from 'node:worker_threads';

const { benchPort, benchTarget } = workerData as { benchPort: MessagePort; benchTarget: string };
const gc = (globalThis as { gc?: () => void }).gc;

benchPort.on('message', async (msg: string | { snapshot: string }) => {
  // A heap snapshot of this thread (BENCH_HEAP_DIR): written after the GCs, answered like a measure.
  const snapshot = typeof msg === 'object' ? msg.snapshot : null;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setImmediate(r));
  }
  if (snapshot) writeHeapSnapshot(snapshot);
  const h = getHeapStatistics();
  benchPort.postMessage({ used: h.used_heap_size, external: h.external_memory, collected: !!gc });
});
benchPort.unref();

createRequire(import.meta.url)(benchTarget);
