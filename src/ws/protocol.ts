// The WebSocket protocol (docs/PROTOCOL.md is its spec): frame envelope, message types as
// discriminated unions, close codes. Shared by the gateway, the reference clients and tests.
import { z } from 'zod';
import { unstorableInput } from '../validation.ts';

export const PROTOCOL_VERSION = 1;
export const MAX_FRAME_BYTES = 1024 * 1024;

export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  TooBig: 1009,
  Overloaded: 1013,
  TokenInvalid: 4401,
  Forbidden: 4403,
  HeartbeatMissed: 4408,
  Replaced: 4409,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Error codes carried by `error` frames: the REST contract's codes. */
export const WsErrorCode = {
  InvalidFrame: 1001,
  Forbidden: 1003,
  NotFound: 2001,
  NotExecutable: 3001,
  ServerError: 5000,
} as const;

const id = z.string().min(1).max(100);
const key = z.string().min(1).max(600);
const json = z.unknown();

/** Every frame, both ways. `payload` is checked against its type after this. */
export const envelopeSchema = z.object({
  id,
  type: z.string().min(1).max(64),
  ts: z.number().finite().optional(),
  re: id.optional(),
  payload: z.record(z.string(), json).optional().default({}),
});
export type Envelope = z.infer<typeof envelopeSchema>;

// ---- client -> server ---------------------------------------------------------------------

const stepErrorPayload = z.object({
  code: z.string().min(1).max(100),
  message: z.string().max(10_000),
  retryable: z.boolean().optional(),
});

export const deviceMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ping'), payload: z.object({}).loose() }),
  z.object({ type: z.literal('step/accept'), payload: z.object({ key }) }),
  z.object({
    type: z.literal('step/progress'),
    payload: z.object({
      key,
      percent: z.number().min(0).max(100).optional(),
      message: z.string().max(2000).optional(),
    }),
  }),
  z.object({ type: z.literal('step/result'), payload: z.object({ key, output: json.optional() }) }),
  z.object({ type: z.literal('step/error'), payload: z.object({ key, error: stepErrorPayload }) }),
  z.object({
    type: z.literal('log'),
    payload: z.object({
      task_id: z.uuid().optional(),
      key: key.optional(),
      level: z.enum(['debug', 'info', 'warn', 'error']),
      message: z.string().max(10_000),
      details: json.optional(),
    }),
  }),
  z.object({
    type: z.literal('device/status'),
    payload: z.object({ busy: z.boolean().optional(), app_version: z.string().max(50).optional() }).loose(),
  }),
]);
export type DeviceMessage = z.infer<typeof deviceMessageSchema>;

export const monitorMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ping'), payload: z.object({}).loose() }),
  z.object({
    type: z.literal('subscribe'),
    payload: z.union([
      z.object({
        task_id: z.uuid(),
        after_seq: z.number().int().min(0).optional(),
        /** Forward the Temporal history events themselves (`history/event`), for tools. */
        raw: z.boolean().optional(),
      }).strict(),
      z.object({ scope: z.literal('user') }).strict(),
    ]),
  }),
  z.object({
    type: z.literal('unsubscribe'),
    payload: z.union([z.object({ task_id: z.uuid() }).strict(), z.object({ scope: z.literal('user') }).strict()]),
  }),
]);
export type MonitorMessage = z.infer<typeof monitorMessageSchema>;

// ---- server -> client ---------------------------------------------------------------------

export interface HelloPayload {
  role: 'device' | 'monitor';
  session_id: string;
  heartbeat_ms: number;
  protocol: number;
}

export interface StepDispatchPayload {
  task_id: string;
  step_id: string;
  attempt: number;
  key: string;
  type: string;
  params: unknown;
  timeout_ms: number;
}

export interface TaskEventPayload {
  task_id: string;
  seq?: number;
  kind: string;
  at: number;
  data: Record<string, unknown>;
}

export type ServerMessage =
  | { type: 'hello'; payload: HelloPayload }
  | { type: 'pong'; payload: Record<string, never> }
  | { type: 'error'; payload: { code: number; message: string; errors?: { path: string; message: string }[] } }
  | { type: 'step/dispatch'; payload: StepDispatchPayload }
  | { type: 'step/pause' | 'step/resume' | 'step/abort'; payload: { key: string; reason?: string } }
  | { type: 'subscribed'; payload: { task_id?: string; scope?: 'user'; status?: string; raw?: boolean } }
  | { type: 'history/event'; payload: { task_id: string; event_id: number; event: unknown } }
  | { type: 'notification'; payload: { task_id: string; kind: string; title: string; at: number } }
  | { type: 'unsubscribed'; payload: { task_id?: string; scope?: 'user' } }
  | { type: 'task/event'; payload: TaskEventPayload };

export function frame(msg: ServerMessage, re?: string): string {
  return JSON.stringify({ id: crypto.randomUUID(), type: msg.type, ts: Date.now(), ...(re ? { re } : {}), payload: msg.payload });
}

/** Payloads serialized so far, by payload object (collected with it). */
const serialized = new WeakMap<object, string>();

/**
 * The same text as frame() for a payload sent to many sockets (a run's event to all its
 * monitors): the payload is serialized once, only `id` and `ts` are new per frame. The payload
 * object must not change after its first send.
 */
export function sharedFrame(msg: ServerMessage): string {
  let json = serialized.get(msg.payload);
  if (json === undefined) {
    json = JSON.stringify(msg.payload);
    serialized.set(msg.payload, json);
  }
  return `{"id":"${crypto.randomUUID()}","type":${JSON.stringify(msg.type)},"ts":${Date.now()},"payload":${json}}`;
}

export type ParseResult<T> =
  | { ok: true; envelope: Envelope; message: T }
  | { ok: false; re?: string; code: number; message: string; errors?: { path: string; message: string }[] };

/** Parses one text frame at the edge: JSON, envelope, then the payload of its type. */
export function parseFrame<T>(raw: string, schema: z.ZodType<T>): ParseResult<T> {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return { ok: false, code: WsErrorCode.InvalidFrame, message: 'frame is not valid JSON' };
  }
  const env = envelopeSchema.safeParse(data);
  if (!env.success) {
    const re = data && typeof data === 'object' && typeof (data as { id?: unknown }).id === 'string'
      ? ((data as { id: string }).id).slice(0, 100) : undefined;
    return { ok: false, re, code: WsErrorCode.InvalidFrame, message: 'invalid frame envelope', errors: issues(env.error) };
  }
  // What PostgreSQL cannot store (NUL, lone surrogates) or too deep: refused here, never a run
  // whose events can no longer be recorded.
  const bad = unstorableInput(env.data.payload);
  if (bad) {
    const path = bad.path === '(root)' ? 'payload' : `payload.${bad.path}`;
    return { ok: false, re: env.data.id, code: WsErrorCode.InvalidFrame, message: `invalid "${env.data.type}" frame`, errors: [{ path, message: bad.message }] };
  }
  const msg = schema.safeParse({ type: env.data.type, payload: env.data.payload });
  if (!msg.success) {
    return {
      ok: false, re: env.data.id, code: WsErrorCode.InvalidFrame,
      message: `invalid "${env.data.type}" frame`, errors: issues(msg.error),
    };
  }
  return { ok: true, envelope: env.data, message: msg.data };
}

function issues(err: z.ZodError) {
  return err.issues.slice(0, 20).map((i) => ({ path: i.path.map(String).join('.') || '(root)', message: i.message }));
}
