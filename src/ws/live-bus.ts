// Live-only events (step progress, device logs): published by the API node holding the
// device, delivered to monitors on every API node. This in-process bus serves one node; the
// PostgreSQL LISTEN/NOTIFY bus (pg-live-bus.ts) carries the same events across nodes.
import type { TaskEventPayload } from './protocol.ts';

export interface LiveEvent {
  userId: string;
  event: TaskEventPayload;
}

export interface LiveBus {
  publish(e: LiveEvent): void;
  subscribe(fn: (e: LiveEvent) => void): () => void;
  close(): Promise<void>;
}

export class LocalLiveBus implements LiveBus {
  private readonly listeners = new Set<(e: LiveEvent) => void>();

  publish(e: LiveEvent): void {
    this.deliver(e);
  }

  /** Delivers to this node's listeners only. */
  deliver(e: LiveEvent): void {
    for (const fn of this.listeners) fn(e);
  }

  subscribe(fn: (e: LiveEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
