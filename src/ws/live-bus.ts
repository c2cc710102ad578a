// Live-only events (step progress, device logs): published by the API node holding the
// device, delivered to monitors on every API node (pg-bus.ts carries them across nodes).
import type { TaskEventPayload } from '../protocol/index.ts';
import type { StepProgressRecorder } from '../domain/step-progress.ts';

export interface LiveEvent {
  userId: string;
  event: TaskEventPayload;
}

export interface LiveBus {
  publish(e: LiveEvent): void;
  subscribe(fn: (e: LiveEvent) => void): () => void;
  close(): Promise<void>;
}

/** `live`, with every `step.progress` published through it also recorded by `recorder`. */
export function recordingProgress(live: LiveBus, recorder: StepProgressRecorder): LiveBus {
  return {
    publish(e: LiveEvent) {
      if (e.event.kind === 'step.progress') {
        const d = e.event.data as { step_id?: unknown; key?: unknown; attempt?: unknown; percent?: unknown; message?: unknown };
        if (typeof d.step_id === 'string' && typeof d.key === 'string' && typeof d.attempt === 'number') {
          recorder.record(e.userId, e.event.task_id, {
            step_id: d.step_id, key: d.key, attempt: d.attempt, at: e.event.at,
            ...(typeof d.percent === 'number' ? { percent: d.percent } : {}),
            ...(typeof d.message === 'string' ? { message: d.message } : {}),
          });
        }
      }
      live.publish(e);
    },
    subscribe: (fn) => live.subscribe(fn),
    close: () => {
      recorder.stop();
      return live.close();
    },
  };
}
