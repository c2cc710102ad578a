// The device-step activities, run inside the API node that holds the device's socket (task
// queue `device-steps.<nodeId>`, see deviceStepQueue): send a step to the PC and wait for its
// answer, or forward a control action to the step in flight.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Orm } from '../src/db/orm.ts';
import { applyRunEvents } from '../src/domain/run-mirror.ts';
import { storedRefsOfStep } from '../src/domain/artifacts.ts';
import type { Logger } from '../src/logger.ts';
import { DeviceDisconnectedError, type DeviceConnections, type StepOutcome } from '../src/ws/device-connections.ts';
import type { LiveBus } from '../src/ws/live-bus.ts';
import type { StepArtifactRef } from '../workflows/api.ts';
import { FailureType, type StepErrorDetails } from '../workflows/step-failures.ts';
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
function outcomeOrThrow(outcome: StepOutcome, stored: StepArtifactRef[]): Omit<DispatchResult, 'mirrored'> {
  const artifacts = stored.length ? { artifacts: stored } : {};
  if (outcome.ok) return { output: outcome.output ?? null, ...artifacts };
  throw stepError(`${outcome.error.code}: ${outcome.error.message}`, { ...outcome.error, ...artifacts });
}

function stepError(message: string, details: StepErrorDetails): ApplicationFailure {
  return ApplicationFailure.create({ type: FailureType.StepError, message, details: [details], nonRetryable: true });
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

    // The answer goes to the run with every file the device attached to the key, on this
    // connection or an earlier one (the artifacts are kept by key, not by dispatch). A key
    // dispatched again may have had files attached through another API node, before the device
    // moved here: those are read from the database (only then: a first dispatch's files all came
    // through this node).
    const again = input.events.some((e) => e.kind === 'step.dispatched' && e.data.key === input.key && Number(e.data.delivery) > 1);
    const answered = async (outcome: StepOutcome) => {
      const here = await connections.answeredArtifacts(input.deviceId, input.key);
      if (!again) return outcomeOrThrow(outcome, here);
      const seen = new Set(here.map((a) => a.artifact_id));
      let stored: StepArtifactRef[];
      try {
        stored = await storedRefsOfStep(orm.em, input.taskId, input.key);
      } catch (err) {
        // PostgreSQL is away: the answer cannot go with all its files, and a step must not fail
        // for that. Dispatched again (the run first locates the device, which waits for the
        // database), the device answers from its own record and the files are read then.
        logger.warn({ err, key: input.key }, 'could not read the step\'s stored artifacts; the step is dispatched again');
        throw disconnected(`the step's stored artifacts could not be read (${(err as Error).message}); dispatching again`);
      }
      const elsewhere = stored.filter((a) => !seen.has(a.artifact_id));
      return outcomeOrThrow(outcome, [...elsewhere, ...here]);
    };

    // The device finished this key after its last dispatch was gone: use that answer.
    const late = connections.takeLate(input.deviceId, input.key);
    if (late) return answered(late);

    connections.rememberDispatch(input.deviceId, input.key, { taskId: input.taskId, stepId: input.stepId, attempt: input.attempt });
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
        pending.cancel(stepError(message, { code: 'STEP_HEARTBEAT_TIMEOUT', message, retryable: true }));
      }
    }, Math.min(heartbeatEveryMs, Math.max(100, Math.floor((input.heartbeatTimeoutMs ?? heartbeatEveryMs) / 4))));
    const timeout = setTimeout(() => {
      connection.send({ type: 'step/abort', payload: { key: input.key, reason: 'timeout' } });
      const message = `step timed out after ${input.timeoutMs} ms`;
      pending.cancel(stepError(message, { code: 'STEP_TIMEOUT', message }));
    }, input.timeoutMs);
    // Temporal delivers cancellation through heartbeats: abort the step on the device.
    ctx.cancelled.catch((err) => {
      connection.send({ type: 'step/abort', payload: { key: input.key, reason: 'cancelled' } });
      pending.cancel(err);
    });
    let outcome: StepOutcome;
    try {
      outcome = await pending.outcome;
    } catch (err) {
      // The key is dispatched again once the device is back: its artifacts wait for that answer.
      if (err instanceof DeviceDisconnectedError) throw disconnected(err.message);
      // Timed out or cancelled: the run leaves this key; a timeout's failure reports the files.
      const artifacts = await connections.answeredArtifacts(input.deviceId, input.key);
      const details = err instanceof ApplicationFailure && err.type === FailureType.StepError ? err.details?.[0] as StepErrorDetails | undefined : undefined;
      if (details && artifacts.length) throw stepError(err instanceof Error ? err.message : String(err), { ...details, artifacts });
      throw err;
    } finally {
      clearInterval(beat);
      clearTimeout(timeout);
      logger.debug({ key: input.key }, 'step dispatch finished');
    }
    return answered(outcome);
  }
}
