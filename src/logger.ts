import { pino, type DestinationStream, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  /**
   * Readable lines (pino-pretty) instead of JSON lines. Default: when the logs go to stdout and
   * stdout is a terminal; collectors get JSON.
   */
  pretty?: boolean;
}

/**
 * Structured logs. Secrets are redacted wherever they could appear. `stream`: stdout by default,
 * JSON lines through a TurnBatchedDestination. Pretty lines are formatted in this thread,
 * synchronously, so that a crash's last lines are not lost in a transport worker's buffer.
 */
export function createLogger(level: string, name = 'jarvis', stream?: DestinationStream, { pretty = !stream && process.stdout.isTTY }: LoggerOptions = {}): Logger {
  const options = {
    name,
    level,
    redact: {
      paths: [
        'password', '*.password', 'token', '*.token', 'access_token', '*.access_token',
        'refresh_token', '*.refresh_token', 'device_token', '*.device_token',
        'req.headers.authorization', 'headers.authorization',
      ],
      censor: '[redacted]',
    },
  };
  return pino(options, pretty ? prettyStream(stream) : stream ?? new TurnBatchedDestination(1));
}

/** Lines held for the current event-loop turn, written at its end: one write(2) for all of them. */
const TURN_BYTES = 64 * 1024;
const live = new Set<WeakRef<TurnBatchedDestination>>();
let exitHooked = false;

/**
 * JSON lines to a file descriptor, written synchronously once per event-loop turn: the access
 * log lines of every request answered in a turn leave in one write(2), in the order they were
 * logged, and no write is ever in flight. At exit (process.exit, an uncaught exception) what the
 * turn holds is written before the process ends. pino's own default, an asynchronous sonic-boom,
 * writes from a thread-pool thread, and a crash during such a write writes the lines queued
 * after it first (test/unit/logger.test.ts fails on it). Like any synchronous log, a reader that
 * stops reading (a full pipe) holds the process until it reads again.
 */
export class TurnBatchedDestination implements DestinationStream {
  private readonly out: ReturnType<typeof pino.destination>;
  private held = '';
  private scheduled = false;
  private readonly flushNow = () => this.flushSync();

  constructor(fd: number) {
    // Synchronous: sonic-boom retries a full non-blocking pipe (EAGAIN) and finishes partial writes.
    this.out = pino.destination({ dest: fd, sync: true });
    for (const ref of live) if (!ref.deref()) live.delete(ref);
    live.add(new WeakRef(this));
    if (!exitHooked) {
      exitHooked = true;
      process.on('exit', () => {
        for (const ref of live) ref.deref()?.flushSync();
      });
    }
  }

  write(line: string): void {
    this.held += line;
    if (this.held.length >= TURN_BYTES) this.flushSync();
    else if (!this.scheduled) {
      this.scheduled = true;
      // After this turn's I/O callbacks (the check phase): every line they logged goes in one write.
      setImmediate(this.flushNow).unref();
    }
  }

  /** Writes what the turn holds now (pino's logger.flush() calls it). */
  flush(cb?: (err?: Error) => void): void {
    try {
      this.flushSync();
    } catch (err) {
      cb?.(err as Error);
      return;
    }
    cb?.();
  }

  flushSync(): void {
    this.scheduled = false;
    if (!this.held) return;
    const text = this.held;
    this.held = '';
    this.out.write(text);
  }
}

function prettyStream(to: DestinationStream | undefined): DestinationStream {
  return PinoPretty({
    sync: true, destination: to ?? 1, colorize: !to && process.stdout.isTTY,
    translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname',
  });
}
