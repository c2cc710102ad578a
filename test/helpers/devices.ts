// Test devices: the reference device client with the demo handlers and a few test handlers.
import { DeviceClient, StepFailure, abortableSleep, demoHandlers, type DeviceClientEvent, type StepHandler } from '../../src/clients/device-client.ts';

export interface TestDevice {
  client: DeviceClient;
  events: DeviceClientEvent[];
  dispatches(taskId?: string): Extract<DeviceClientEvent, { type: 'dispatch' }>['payload'][];
}

/** Handlers tests use besides the demo ones. */
export function testHandlers(): Record<string, StepHandler> {
  const failures = new Map<string, number>();
  return {
    ...demoHandlers,
    // Ignores step/pause: finishes anyway (the run must hold at the next boundary).
    'test.stubborn': async (params, ctx) => {
      await abortableSleep(Number((params as { ms?: number }).ms ?? 500), ctx.signal);
      return { done: true };
    },
    // Works without a sign of life (no progress) until aborted or `ms` passed.
    'test.silent': async (params, ctx) => {
      await abortableSleep(Number((params as { ms?: number }).ms ?? 60_000), ctx.signal);
      return { silent: true };
    },
    // Fails `times` times per step (or per `tag`, across tasks), retryable unless told; then succeeds.
    'test.flaky': async (params, ctx) => {
      const p = params as { times?: number; retryable?: boolean; code?: string; tag?: string };
      const id = p.tag ?? `${ctx.taskId}:${ctx.stepId}`;
      const n = failures.get(id) ?? 0;
      if (n < (p.times ?? 1)) {
        failures.set(id, n + 1);
        throw new StepFailure(p.code ?? 'FLAKY', `failure ${n + 1}`, p.retryable ?? true);
      }
      return { attempt: ctx.attempt, failures: n };
    },
  };
}

export async function connectTestDevice(url: string, token: string, handlers = testHandlers()): Promise<TestDevice> {
  const events: DeviceClientEvent[] = [];
  const client = new DeviceClient({ url, token, handlers, onEvent: (e) => events.push(e), maxBackoffMs: 500 });
  await client.start();
  return {
    client,
    events,
    dispatches: (taskId) =>
      events
        .filter((e): e is Extract<DeviceClientEvent, { type: 'dispatch' }> => e.type === 'dispatch')
        .map((e) => e.payload)
        .filter((p) => !taskId || p.task_id === taskId),
  };
}
