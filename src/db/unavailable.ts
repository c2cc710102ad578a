// Whether an error means PostgreSQL cannot be reached right now (down, restarting, the
// connection cut), as opposed to a fault of the query: the API answers the first with 503
// (retry later), and only the second is a bug worth a 500.
import { ConnectionException } from '@mikro-orm/core';

/** Socket errors of a server that is gone or not listening. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/**
 * SQLSTATEs of a server that is shutting down or starting: admin_shutdown, crash_shutdown,
 * cannot_connect_now (recovery after a crash), too_many_connections; and class 08
 * (connection exception).
 */
const SERVER_CODES = new Set(['57P01', '57P02', '57P03', '53300']);
/** What node-postgres says when the socket under a client or a pool closed. */
const CLOSED_MESSAGES = [/connection terminated/i, /not queryable/i, /timeout exceeded when trying to connect/i, /connection ended/i];

export function isDatabaseUnavailable(err: unknown): boolean {
  // The driver's error may be wrapped (MikroORM's exceptions keep it as `cause` or `previous`).
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    if (e instanceof ConnectionException) return true;
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || SERVER_CODES.has(code) || code.startsWith('08'))) return true;
    if (typeof message === 'string' && CLOSED_MESSAGES.some((re) => re.test(message))) return true;
    e = (e as { cause?: unknown; previous?: unknown }).cause ?? (e as { previous?: unknown }).previous;
  }
  return false;
}
