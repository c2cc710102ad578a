// Bare Temporal workflows: the baselines of `npm run bench`. Bundled on their own, run by a
// worker of their own on their own task queue (scripts/bench/server.ts), next to ours on the
// same Temporal dev server. Deterministic code only, like workflows/.
import { ActivityCancellationType, CancellationScope, condition, defineSignal, isCancellation, proxyActivities, setHandler } from '@temporalio/workflow';

/** What the bare worker's activities do: nothing much, on purpose. */
export interface BareActivities {
  /** A trivial step: returns its input. */
  echo(input: { step: number }): Promise<{ echo: { step: number } }>;
  /**
   * A step on a bare device: sends the step to the driver's socket number `device` (the bare
   * server's /device?n=<device>) and resolves on its answer, matched by an id.
   */
  deviceStep(input: { device: number; step: number }): Promise<unknown>;
  /** Writes `n` to the ws socket the bench client listens on (F3, F6 and F8 baselines). */
  notify(n: number): Promise<void>;
  /**
   * F6 baseline: a long step. Says `n` on the client's socket, then heartbeats every 2 s (as our
   * device-step dispatch does) until cancelled.
   */
  hold(n: number): Promise<void>;
}

const acts = proxyActivities<BareActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 1 },
});

/**
 * F1/F2 baseline, the product at its most minimal: `steps` steps one after the other, each sent to
 * a device (the driver's socket `device`) that answers at once. Our steps make that round trip too.
 */
export async function bareDeviceStepsWorkflow(device: number, steps: number): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 1; i <= steps; i++) out.push(await acts.deviceStep({ device, step: i }));
  return out;
}

/**
 * F1's "Temporal alone" baseline: `steps` trivial activities one after the other, no device. What
 * Temporal's part of a run costs; shown beside the verdict, which is against the device baseline.
 */
export async function bareStepsWorkflow(steps: number): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 1; i <= steps; i++) out.push(await acts.echo({ step: i }));
  return out;
}

/**
 * F8 baseline: its first activity says so on the client's ws socket (`n`), then two trivial steps
 * (the F1 shape: three steps).
 */
export async function bareFirstStepWorkflow(n: number): Promise<void> {
  await acts.notify(n);
  await acts.echo({ step: 2 });
  await acts.echo({ step: 3 });
}

export const pokeSignal = defineSignal<[number]>('poke');
export const doneSignal = defineSignal('done');

/** F3 baseline: on every `poke` signal, an activity writes to the client's ws socket. */
export async function bareControlWorkflow(): Promise<number> {
  const queue: number[] = [];
  let done = false;
  let handled = 0;
  setHandler(pokeSignal, (n) => {
    queue.push(n);
  });
  setHandler(doneSignal, () => {
    done = true;
  });
  for (;;) {
    await condition(() => queue.length > 0 || done);
    while (queue.length > 0) {
      await acts.notify(queue.shift()!);
      handled++;
    }
    if (done) return handled;
  }
}

export const releaseSignal = defineSignal('release');

const held = proxyActivities<BareActivities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '20s',
  retry: { maximumAttempts: 1 },
  cancellationType: ActivityCancellationType.TRY_CANCEL,
});

/**
 * F6 baseline: a run parked in a long step, as ours is (its device-step activity in flight,
 * heartbeating, until the step ends): the `hold` activity, cancelled on release.
 */
export async function bareHeldWorkflow(n: number): Promise<void> {
  const scope = new CancellationScope();
  setHandler(releaseSignal, () => scope.cancel());
  try {
    await scope.run(() => held.hold(n));
  } catch (err) {
    if (!isCancellation(err)) throw err;
  }
}

/**
 * F6 baseline: a run parked on a condition until released. It says so first (the `notify`
 * activity), so the bench knows when every run is parked.
 */
export async function bareParkedWorkflow(n: number): Promise<void> {
  let released = false;
  setHandler(releaseSignal, () => {
    released = true;
  });
  await acts.notify(n);
  await condition(() => released);
}
