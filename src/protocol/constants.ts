// The protocol's numbers: its version, the frame size limit, close codes and error codes.
// Everything here is plain data so the browser build of the codec (browser.ts) carries it too.

/** Sent in `hello`; bumped only for a change an older client cannot read. */
export const PROTOCOL_VERSION = 1;

/**
 * Larger frames from a device close its socket with CloseCode.TooBig (the transport enforces
 * it). Only a step's answer (`step/result`, `step/error`) and a `log` may come near it.
 */
export const MAX_FRAME_BYTES = 1024 * 1024;

/**
 * Largest frame a monitor may send (subscribe, unsubscribe, ping are a few hundred bytes):
 * larger ones close the socket with CloseCode.TooBig before they are even buffered whole.
 */
export const MAX_MONITOR_FRAME_BYTES = 16 * 1024;

/**
 * Largest device frame of any other type than a step's answer or a log (ping, step/accept,
 * step/progress, device/status): refused with `error` before its payload is validated, so a
 * stream of large pings costs a JSON parse each, not a schema walk.
 */
export const MAX_CONTROL_FRAME_BYTES = 16 * 1024;

/** Device frame types that may be up to MAX_FRAME_BYTES. */
export const LARGE_DEVICE_FRAMES: ReadonlySet<string> = new Set(['step/result', 'step/error', 'log', 'step/artifact']);

/** A step artifact's bytes, decoded: one frame carries one, in base64 (4 bytes per 3). */
export const MAX_ARTIFACT_BYTES = 700 * 1024;

/** Why the server closed a socket. 4xxx are ours, the rest are RFC 6455's. */
export const CloseCode = {
  Normal: 1000,
  /** The server is shutting down: reconnect (another node takes over). */
  GoingAway: 1001,
  /** A frame over MAX_FRAME_BYTES. */
  TooBig: 1009,
  /** A monitor too far behind on durable events: resubscribe with after_seq. */
  Overloaded: 1013,
  /** Token expired or revoked, device token rotated or device unbound. */
  TokenInvalid: 4401,
  Forbidden: 4403,
  /** No frame within 1.5 heartbeat intervals. */
  HeartbeatMissed: 4408,
  /** A newer connection of the same device took over. */
  Replaced: 4409,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * Closes after which reconnecting with the same credentials cannot help: a client stays down
 * (a device asks its user for a new token; a replaced device lets the newer connection be).
 */
export function isFinalClose(code: number): boolean {
  return code === CloseCode.TokenInvalid || code === CloseCode.Forbidden || code === CloseCode.Replaced;
}

/** Codes carried by `error` frames: the REST contract's codes. */
export const WsErrorCode = {
  InvalidFrame: 1001,
  Forbidden: 1003,
  NotFound: 2001,
  NotExecutable: 3001,
  /** Over a per-account or per-socket limit (subscriptions per socket). */
  TooMany: 4029,
  ServerError: 5000,
} as const;
export type WsErrorCode = (typeof WsErrorCode)[keyof typeof WsErrorCode];
