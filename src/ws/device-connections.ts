// Live device connections on this API node (a device's WebSocket from hello to close: not a
// login session), and the steps each one has in flight.
import type { WebSocket } from 'ws';
import { encodeFrame, type ServerToDevice, type StepDispatchPayload } from '../protocol/index.ts';
import { startFrameSpan, type FrameSpan } from '../telemetry/device-frames.ts';
import type { StepArtifactRef } from '../../workflows/api.ts';

export type StepOutcome =
  | { ok: true; output: unknown }
  | { ok: false; error: { code: string; message: string; retryable?: boolean } };

/** A dispatched step as the device's frames about it are bound to. */
export interface DispatchedStep {
  taskId: string;
  stepId: string;
  attempt: number;
}

export interface StepProgress {
  percent?: number;
  message?: string;
}

interface Waiter {
  taskId: string;
  stepId: string;
  attempt: number;
  /** Any sign of life from the device for this step (accept, progress). */
  lastActivity: number;
  resolve(outcome: StepOutcome): void;
  reject(err: unknown): void;
  onProgress(p: StepProgress): void;
  accepted: boolean;
  /** The trace's device hop: from the dispatch frame to the answer. */
  frame: FrameSpan;
}

/** The socket went away while a step was in flight. */
export class DeviceDisconnectedError extends Error {}

/** Which of a device's connections is newer: later start, ties broken by connection id. */
export interface ConnectionOrder {
  /** The connection's id (`session_id` in hello and in the presence columns). */
  connectionId: string;
  startedAt: number;
}

/** True when `a` is newer than `b`; the same order markOnline keeps in PostgreSQL. */
export function isNewerConnection(a: ConnectionOrder, b: ConnectionOrder): boolean {
  return a.startedAt !== b.startedAt ? a.startedAt > b.startedAt : a.connectionId > b.connectionId;
}

export class DeviceConnection {
  readonly deviceId: string;
  readonly userId: string;
  /** Sent in hello as `session_id`. */
  readonly connectionId: string;
  readonly socket: WebSocket;
  /** When the connection was accepted (ms): orders a device's connections across nodes. */
  readonly startedAt: number;
  private readonly waiters = new Map<string, Waiter>();
  closed = false;

  constructor(deviceId: string, userId: string, connectionId: string, socket: WebSocket, startedAt = Date.now()) {
    this.deviceId = deviceId;
    this.userId = userId;
    this.connectionId = connectionId;
    this.socket = socket;
    this.startedAt = startedAt;
  }

  send(msg: ServerToDevice, re?: string): void {
    if (this.closed || this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(encodeFrame(msg, re));
  }

  /** Sends `step/dispatch` and waits for the device's `step/result` or `step/error`. */
  dispatch(payload: StepDispatchPayload, onProgress: (p: StepProgress) => void): {
    outcome: Promise<StepOutcome>;
    cancel(err: unknown): void;
  } {
    if (this.closed) throw new DeviceDisconnectedError('device connection is closed');
    const { key } = payload;
    // A second dispatch of a key still in flight (a workflow retry) replaces the first waiter.
    this.waiters.get(key)?.reject(new DeviceDisconnectedError('superseded by a new dispatch of the same key'));
    let waiter!: Waiter;
    const frame = startFrameSpan(this.deviceId, payload);
    const outcome = new Promise<StepOutcome>((resolve, reject) => {
      waiter = {
        taskId: payload.task_id, stepId: payload.step_id, attempt: payload.attempt,
        lastActivity: Date.now(), onProgress, accepted: false, frame,
        resolve: (o) => {
          frame.answered(o);
          resolve(o);
        },
        reject: (err) => {
          frame.failed(err);
          reject(err);
        },
      };
    });
    this.waiters.set(key, waiter);
    this.send({ type: 'step/dispatch', payload });
    return {
      outcome,
      cancel: (err) => {
        if (this.waiters.get(key) === waiter) this.waiters.delete(key);
        waiter.reject(err);
      },
    };
  }

  /** The task a key in flight belongs to, or undefined when this device has no such step. */
  taskOf(key: string): string | undefined {
    return this.waiters.get(key)?.taskId;
  }

  /** The step in flight with this key on this connection, or undefined. */
  stepOf(key: string): DispatchedStep | undefined {
    const w = this.waiters.get(key);
    return w && { taskId: w.taskId, stepId: w.stepId, attempt: w.attempt };
  }

  /** A sign of life for a step in flight (an artifact being sent); false when not in flight. */
  touch(key: string): boolean {
    const w = this.waiters.get(key);
    if (w) w.lastActivity = Date.now();
    return !!w;
  }

  accept(key: string): boolean {
    const w = this.waiters.get(key);
    if (w) {
      w.accepted = true;
      w.lastActivity = Date.now();
      w.frame.accepted();
    }
    return !!w;
  }

  progress(key: string, p: StepProgress): boolean {
    const w = this.waiters.get(key);
    if (w) {
      w.lastActivity = Date.now();
      w.onProgress(p);
    }
    return !!w;
  }

  /** Epoch ms of the device's last sign of life for a step in flight. */
  lastActivity(key: string): number | undefined {
    return this.waiters.get(key)?.lastActivity;
  }

  /** Settles a step; false when no step with this key is in flight on this connection. */
  settle(key: string, outcome: StepOutcome): boolean {
    const w = this.waiters.get(key);
    if (!w) return false;
    this.waiters.delete(key);
    w.resolve(outcome);
    return true;
  }

  inFlight(): number {
    return this.waiters.size;
  }

  /** Fails every step in flight: each is dispatched again, same key, when the device is back. */
  dropAll(reason: string): void {
    this.closed = true;
    for (const w of this.waiters.values()) w.reject(new DeviceDisconnectedError(reason));
    this.waiters.clear();
  }
}

/** deviceId -> its one live connection on this node (a newer connection replaces an older one). */
export class DeviceConnections {
  private readonly byDevice = new Map<string, DeviceConnection>();
  /** Answers that arrived after their dispatch was gone, kept briefly for the re-dispatch. */
  private readonly lateOutcomes = new Map<string, { deviceId: string; outcome: StepOutcome; at: number }>();
  private static readonly LATE_TTL_MS = 10 * 60 * 1000;
  private static readonly LATE_MAX = 10_000;

  get(deviceId: string): DeviceConnection | undefined {
    return this.byDevice.get(deviceId);
  }

  /** Registers a connection; returns the connection it replaces, if any. */
  add(conn: DeviceConnection): DeviceConnection | undefined {
    const old = this.byDevice.get(conn.deviceId);
    this.byDevice.set(conn.deviceId, conn);
    return old;
  }

  /** Removes the connection if it is still the current one; true when it was. */
  remove(conn: DeviceConnection): boolean {
    if (this.byDevice.get(conn.deviceId) !== conn) return false;
    this.byDevice.delete(conn.deviceId);
    return true;
  }

  all(): DeviceConnection[] {
    return [...this.byDevice.values()];
  }

  get size(): number {
    return this.byDevice.size;
  }

  /** Keys dispatched to each device recently (and their step): only those may be answered late. */
  private readonly dispatched = new Map<string, { deviceId: string; step: DispatchedStep; at: number }>();

  rememberDispatch(deviceId: string, key: string, step: DispatchedStep): void {
    prune(this.dispatched, DeviceConnections.LATE_TTL_MS, DeviceConnections.LATE_MAX);
    this.dispatched.set(key, { deviceId, step, at: Date.now() });
  }

  wasDispatchedTo(deviceId: string, key: string): boolean {
    return this.dispatchedStep(deviceId, key) !== undefined;
  }

  /** The step a key recently dispatched to this device belongs to, or undefined. */
  dispatchedStep(deviceId: string, key: string): DispatchedStep | undefined {
    const d = this.dispatched.get(key);
    return d && d.deviceId === deviceId && Date.now() - d.at < DeviceConnections.LATE_TTL_MS ? d.step : undefined;
  }

  /**
   * Each key's artifacts, kept here rather than with one connection's dispatch: a device that
   * attaches a file, loses its socket and answers on the next one (the late path) or to the
   * re-dispatch still has the file reported with the step.
   */
  private readonly artifacts = new Map<string, { deviceId: string; stored: Promise<StepArtifactRef | null>[]; answered: boolean; at: number }>();

  /**
   * The step an artifact for this key goes to: the one in flight on the device's connection, or
   * one recently dispatched to the device whose answer has not yet gone to the run (after that,
   * a file would be stored and never reported). Undefined: refuse it.
   */
  attachable(deviceId: string, key: string, inFlight: DispatchedStep | undefined): DispatchedStep | undefined {
    const entry = this.artifacts.get(key);
    if (entry && (entry.deviceId !== deviceId || entry.answered)) return undefined;
    return inFlight ?? this.dispatchedStep(deviceId, key);
  }

  /** Ties an artifact being stored to its key (attachable said yes): the step's answer carries it. */
  attach(deviceId: string, key: string, stored: Promise<StepArtifactRef | null>): void {
    let entry = this.artifacts.get(key);
    if (entry) this.artifacts.delete(key); // re-inserted last: the map stays in age order for prune()
    else {
      prune(this.artifacts, DeviceConnections.LATE_TTL_MS, DeviceConnections.LATE_MAX);
      entry = { deviceId, stored: [], answered: false, at: 0 };
    }
    entry.at = Date.now();
    entry.stored.push(stored.catch(() => null));
    this.artifacts.set(key, entry);
  }

  /**
   * Every artifact stored for the key once it is (refused ones left out), for the answer going
   * to the run. All of them each time: the run records them from the one answer it takes.
   */
  async answeredArtifacts(deviceId: string, key: string): Promise<StepArtifactRef[]> {
    const entry = this.artifacts.get(key);
    if (!entry || entry.deviceId !== deviceId) return [];
    entry.answered = true;
    const refs = await Promise.all(entry.stored);
    return refs.filter((r): r is StepArtifactRef => r !== null);
  }

  /** Keeps an answer that came after its dispatch was gone; false when the key is not this device's. */
  keepLate(deviceId: string, key: string, outcome: StepOutcome): boolean {
    if (!this.wasDispatchedTo(deviceId, key)) return false;
    prune(this.lateOutcomes, DeviceConnections.LATE_TTL_MS, DeviceConnections.LATE_MAX);
    this.lateOutcomes.set(key, { deviceId, outcome, at: Date.now() });
    return true;
  }

  /** The order of the last pause or resume sent for each step key (ControlStepInput.order). */
  private readonly controlOrder = new Map<string, { order: number; at: number }>();

  /** Whether a control frame of this order may go now (no later one went before it); records it. */
  controlInOrder(key: string, order: number): boolean {
    const last = this.controlOrder.get(key);
    if (last && last.order > order) return false;
    prune(this.controlOrder, DeviceConnections.LATE_TTL_MS, DeviceConnections.LATE_MAX);
    this.controlOrder.delete(key); // re-inserted last: the map stays in age order for prune()
    this.controlOrder.set(key, { order, at: Date.now() });
    return true;
  }

  takeLate(deviceId: string, key: string): StepOutcome | undefined {
    const v = this.lateOutcomes.get(key);
    if (!v || v.deviceId !== deviceId || Date.now() - v.at > DeviceConnections.LATE_TTL_MS) return undefined;
    this.lateOutcomes.delete(key);
    return v.outcome;
  }
}

/** Drops expired entries (oldest first, Maps keep insertion order) and keeps the map bounded. */
function prune<V extends { at: number }>(map: Map<string, V>, ttlMs: number, max: number): void {
  const now = Date.now();
  for (const [k, v] of map) {
    if (now - v.at < ttlMs && map.size < max) break;
    map.delete(k);
  }
}
