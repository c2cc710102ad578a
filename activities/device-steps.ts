// The device-step activities, run inside the API node that holds the device's socket (task
// queue `device-steps.<nodeId>`, see deviceStepQueue): send a step to the PC and wait for its
// answer, or forward a control action to the step in flight.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Orm } from '../src/db/orm.ts';
import { applyRunEvents } from '../src/domain/run-mirror.ts';
import type { Logger } from '../src/logger.ts';
import { DeviceDisconnectedError, type DeviceConnections, type StepOutcome } from '../src/ws/device-connections.ts';
import type { LiveBus } from '../src/ws/live-bus.ts';
import { FailureType } from '../workflows/step-failures.ts';
import type { ControlStepInput, DispatchResult, DispatchStepInput, DeviceStepActivities } from './types.ts';

export interface DeviceStepDeps {
  connections: DeviceConnections;
  live: LiveBus;
  logger: Logger;
  /** Writes the run events a dispatch carries. */
  orm: Orm;
  /** How often a dispatch heartbeats to Temporal while the device works. */
  heartbeatEveryMs?: number;
}

function disconnected(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: FailureType.DeviceDisconnected, message, nonRetryable: true });
}

/** The step's output and artifacts, or its error (with its artifacts) as the workflow reads it. */
function outcomeOrThrow(outcome: StepOutcome): Omit<DispatchResult, 'mirrored'> {
  const artifacts = outcome.artifacts?.length ? { artifacts: outcome.artifacts } : {};
  if (outcome.ok) return { output: outcome.output ?? null, ...artifacts };
  throw ApplicationFailure.create({
    type: FailureType.StepError,
    message: `${outcome.error.code}: ${outcome.error.message}`,
    details: [{ ...outcome.error, ...artifacts }],
    nonRetryable: true,
  });
}

export function createDeviceStepActivities({ connections, live, logger, orm, heartbeatEveryMs = 2000 }: DeviceStepDeps): DeviceStepActivities {
  /** Writes the carried events beside the step; a failure is the run's to repair, not the step's. */
  const mirror = (input: DispatchStepInput): Promise<boolean> =>
    applyRunEvents(orm, input.taskId, input.events).then(() => true, (err: unknown) => {
      logger.warn({ err, taskId: input.taskId }, 'could not mirror the events a dispatch carried; the run records them');
      return false;
    });

  return {
    async dispatchStep(input: DispatchStepInput): Promise<DispatchResult> {
      const mirrored = mirror(input);
      try {
        const answer = await deliver(input);
        return { ...answer, mirrored: await mirrored };
      } finally {
        await mirrored; // never leave a write running past the activity
      }
    },

    async controlStep({ deviceId, key, action, reason, order }: ControlStepInput): Promise<boolean> {
      const connection = connections.get(deviceId);
      if (!connection || connection.closed) return false;
      // A pause overtaken by the resume that followed it would hold the step forever: dropped.
      if (order !== undefined && !connections.controlInOrder(key, order)) return false;
      connection.send({ type: `step/${action}`, payload: { key, ...(reason ? { reason } : {}) } });
      return true;
    },
  };

  /** Sends the step to the device and waits for its answer (or the late one already there). */
  async function deliver(input: DispatchStepInput): Promise<Omit<DispatchResult, 'mirrored'>> {
    const ctx = Context.current();
    const connection = connections.get(input.deviceId);
    if (!connection || connection.closed) throw disconnected(`device ${input.deviceId} is not connected to this node`);

    // The device finished this key after its last dispatch was gone: use that answer.
    const late = connections.takeLate(input.deviceId, input.key);
    if (late) return outcomeOrThrow(late);

    connections.rememberDispatch(input.deviceId, input.key);
    let lastProgress: { percent?: number; message?: string } = {};
    const pending = connection.dispatch(
      {
        task_id: input.taskId,
        step_id: input.stepId,
        attempt: input.attempt,
        key: input.key,
        type: input.type,
        params: input.params,
        timeout_ms: input.timeoutMs,
      },
      (p) => {
        lastProgress = p;
        ctx.heartbeat(p);
        live.publish({
          userId: connection.userId,
          event: {
            task_id: input.taskId,
            kind: 'step.progress',
            at: Date.now(),
            data: { step_id: input.stepId, key: input.key, attempt: input.attempt, ...p },
          },
        });
      },
    );

    const beat = setInterval(() => {
      ctx.heartbeat(lastProgress);
      const last = connection.lastActivity(input.key);
      if (input.heartbeatTimeoutMs && last !== undefined && Date.now() - last > input.heartbeatTimeoutMs) {
        // The device went quiet on this step: abort it; the workflow may try again.
        const message = `no progress from the device for ${input.heartbeatTimeoutMs} ms`;
        connection.send({ type: 'step/abort', payload: { key: input.key, reason: 'heartbeat_timeout' } });
        pending.cancel(ApplicationFailure.create({
          type: FailureType.StepError, message, nonRetryable: true,
          details: [{ code: 'STEP_HEARTBEAT_TIMEOUT', message, retryable: true }],
        }));
      }
    }, Math.min(heartbeatEveryMs, Math.max(100, Math.floor((input.heartbeatTimeoutMs ?? heartbeatEveryMs) / 4))));
    const timeout = setTimeout(() => {
      connection.send({ type: 'step/abort', payload: { key: input.key, reason: 'timeout' } });
      pending.cancel(
        ApplicationFailure.create({
          type: FailureType.StepError,
          message: `step timed out after ${input.timeoutMs} ms`,
          details: [{ code: 'STEP_TIMEOUT', message: `step timed out after ${input.timeoutMs} ms` }],
          nonRetryable: true,
        }),
      );
    }, input.timeoutMs);
    // Temporal delivers cancellation through heartbeats: abort the step on the device.
    ctx.cancelled.catch((err) => {
      connection.send({ type: 'step/abort', payload: { key: input.key, reason: 'cancelled' } });
      pending.cancel(err);
    });
    try {
      return outcomeOrThrow(await pending.outcome);
    } catch (err) {
      if (err instanceof DeviceDisconnectedError) throw disconnected(err.message);
      throw err;
    } finally {
      clearInterval(beat);
      clearTimeout(timeout);
      logger.debug({ key: input.key }, 'step dispatch finished');
    }
  }
}
