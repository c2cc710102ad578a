// Text frames in and out, on both sides of the socket: parse at the edge (JSON, envelope, then
// the payload of its type against its direction's union), encode with a fresh id and ts. The
// server, the Node clients and the monitor page (through browser.ts) all go through here.
import type { z } from 'zod';
import { WsErrorCode } from './constants.ts';
import {
  deviceToServerSchema,
  envelopeSchema,
  monitorToServerSchema,
  serverToDeviceSchema,
  serverToMonitorSchema,
  type ClientFrame,
  type DeviceToServer,
  type Envelope,
  type MonitorToServer,
  type ServerFrame,
  type ServerToDevice,
  type ServerToMonitor,
} from './frames.ts';

export interface FieldIssue {
  path: string;
  message: string;
}

/** A frame refused: `error` is the payload of the `error` frame that answers it. */
export interface BadFrame {
  ok: false;
  /** The bad frame's id when it had a readable one: the answer's `re`. */
  re?: string;
  error: { code: number; message: string; errors?: FieldIssue[] };
}

export type Parsed<T> = { ok: true; envelope: Envelope; frame: T } | BadFrame;

export interface ParseOptions {
  /** Checked on the payload before its schema: the server refuses what it could not store. */
  refuse?: (payload: Record<string, unknown>) => FieldIssue | null;
  /** Largest frame of this type, in bytes of `text`'s UTF-8 (checked before refuse and schema). */
  maxBytes?: (type: string) => number;
  /**
   * Frames larger than this are read only if their `type`, found in their first
   * TYPE_WITHIN_CHARS characters, allows their size: a large frame of a small type is refused
   * before JSON.parse (our encoders write `type` right after `id`, before the payload).
   */
  smallFrameBytes?: number;
}

/** Where a large frame's `type` must be found (see ParseOptions.smallFrameBytes). */
export const TYPE_WITHIN_CHARS = 512;

/** Parses one text frame against the union of what may arrive in its direction. */
export function parseFrame<T>(text: string, schema: z.ZodType<T>, opts: ParseOptions = {}): Parsed<T> {
  if (opts.smallFrameBytes !== undefined && text.length > opts.smallFrameBytes / 3) {
    const refused = checkLargeFrame(text.slice(0, TYPE_WITHIN_CHARS), Buffer.byteLength(text), opts);
    if (refused) return refused;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return bad(undefined, 'frame is not valid JSON');
  }
  const env = envelopeSchema.safeParse(data);
  if (!env.success) {
    const id = data && typeof data === 'object' ? (data as { id?: unknown }).id : undefined;
    return bad(typeof id === 'string' && id ? id.slice(0, 100) : undefined, 'invalid frame envelope', issues(env.error));
  }
  const { id, type, payload } = env.data;
  if (opts.maxBytes) {
    const max = opts.maxBytes(type);
    // Length in UTF-16 units is at most the UTF-8 length: count bytes only when it could matter.
    // (Only the server passes maxBytes, so Buffer is there; the browser build never gets here.)
    if (text.length > max / 3 && Buffer.byteLength(text) > max) {
      return bad(id, `a "${type}" frame may be at most ${max} bytes`);
    }
  }
  const refused = opts.refuse?.(payload);
  if (refused) {
    const path = refused.path === '(root)' ? 'payload' : `payload.${refused.path}`;
    return bad(id, `invalid "${type}" frame`, [{ path, message: refused.message }]);
  }
  const msg = schema.safeParse({ type, payload });
  if (!msg.success) return bad(id, `invalid "${type}" frame`, issues(msg.error));
  return { ok: true, envelope: env.data, frame: msg.data };
}

/**
 * For a frame of `bytes` whose first characters are `head`: refused when it is over
 * opts.smallFrameBytes and its declared type does not allow its size (or it declares none within
 * TYPE_WITHIN_CHARS). Cheap: the server calls it on a frame's first bytes before decoding the rest.
 */
export function checkLargeFrame(head: string, bytes: number, opts: ParseOptions): BadFrame | null {
  if (opts.smallFrameBytes === undefined || !opts.maxBytes || bytes <= opts.smallFrameBytes) return null;
  head = head.slice(0, TYPE_WITHIN_CHARS);
  const declared = /"type"\s*:\s*"([^"\\]{1,100})"/.exec(head)?.[1];
  // The answer's `re`, when the id is there to be read.
  const re = /"id"\s*:\s*"([^"\\]{1,100})"/.exec(head)?.[1];
  if (declared === undefined) {
    return bad(re, `a frame over ${opts.smallFrameBytes} bytes must give its "type" within its first ${TYPE_WITHIN_CHARS} characters`);
  }
  const max = opts.maxBytes(declared);
  return bytes > max ? bad(re, `a "${declared}" frame may be at most ${max} bytes`) : null;
}

// The four edges. The server parses what devices and monitors send; each client parses what
// the server sends it.
export const parseDeviceFrame = (text: string, opts?: ParseOptions): Parsed<DeviceToServer> =>
  parseFrame(text, deviceToServerSchema, opts);
export const parseMonitorFrame = (text: string, opts?: ParseOptions): Parsed<MonitorToServer> =>
  parseFrame(text, monitorToServerSchema, opts);
export const parseServerToDevice = (text: string): Parsed<ServerToDevice> => parseFrame(text, serverToDeviceSchema);
export const parseServerToMonitor = (text: string): Parsed<ServerToMonitor> => parseFrame(text, serverToMonitorSchema);

/**
 * One frame's text: an id (fresh unless the sender needs to know it beforehand, to match the
 * answer's `re`) and ts around the message, `re` when it answers a frame.
 */
export function encodeFrame(msg: ServerFrame | ClientFrame, re?: string, id = newFrameId()): string {
  return JSON.stringify({ id, type: msg.type, ts: Date.now(), ...(re ? { re } : {}), payload: msg.payload });
}

/** Payloads serialized so far, by payload object (collected with it). */
const serialized = new WeakMap<object, string>();

/**
 * The same text as encodeFrame() for a payload sent to many sockets (a run's event to all its
 * monitors): the payload is serialized once, only `id` and `ts` are new per frame. The payload
 * object must not change after its first send.
 */
export function encodeSharedFrame(msg: ServerFrame): string {
  let json = serialized.get(msg.payload);
  if (json === undefined) {
    json = JSON.stringify(msg.payload);
    serialized.set(msg.payload, json);
  }
  return `{"id":"${newFrameId()}","type":${JSON.stringify(msg.type)},"ts":${Date.now()},"payload":${json}}`;
}

// Pages served over plain http (another host than localhost) have no crypto.randomUUID: frame ids
// need to be unique per connection, not unguessable.
export function newFrameId(): string {
  if (typeof crypto !== 'undefined' && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

function bad(re: string | undefined, message: string, errors?: FieldIssue[]): BadFrame {
  return { ok: false, ...(re ? { re } : {}), error: { code: WsErrorCode.InvalidFrame, message, ...(errors ? { errors } : {}) } };
}

function issues(err: z.ZodError): FieldIssue[] {
  return err.issues.slice(0, 20).map((i) => ({ path: i.path.map(String).join('.') || '(root)', message: i.message }));
}
