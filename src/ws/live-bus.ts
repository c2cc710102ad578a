// Live-only events (step progress, device logs): published by the API node holding the
// device, delivered to monitors on every API node (pg-bus.ts carries them across nodes).
import type { TaskEventPayload } from '../protocol/index.ts';

export interface LiveEvent {
  userId: string;
  event: TaskEventPayload;
}

export interface LiveBus {
  publish(e: LiveEvent): void;
  subscribe(fn: (e: LiveEvent) => void): () => void;
  close(): Promise<void>;
}
