// Cancellation scopes that cost no promises to run something in.
import { CancellationScope } from '@temporalio/workflow';

/**
 * A CancellationScope whose `run(fn)` returns `fn()`'s own promise. The SDK's `run` makes `fn`
 * the current scope's work (what an activity scheduled inside it links its cancellation to)
 * for `fn`'s synchronous part, then awaits it in an async method that exists for its `timeout`
 * option and its stack traces: two more promises per call, each with a stack trace captured by
 * the SDK's promise hook (docs/design.md, "a step path with few promises"). For a scope without
 * a timeout around a call that schedules synchronously (an activity, a local activity) the
 * result is the same: the activity is linked to this scope, and its promise settles as it does.
 */
export class DirectScope extends CancellationScope {
  /** No `timeout`: it is what the SDK's own `run` awaits for. */
  constructor(options?: { cancellable: boolean }) {
    super(options);
  }

  protected override runInContext<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }
}
