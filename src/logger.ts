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
 * Structured logs. Secrets are redacted wherever they could appear. `stream`: stdout by default.
 * Pretty lines are formatted in this thread, synchronously, so that a crash's last lines are not
 * lost in a transport worker's buffer.
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
  const destination = pretty ? prettyStream(stream) : stream;
  return destination ? pino(options, destination) : pino(options);
}

function prettyStream(to: DestinationStream | undefined): DestinationStream {
  return PinoPretty({
    sync: true, destination: to ?? 1, colorize: !to && process.stdout.isTTY,
    translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname',
  });
}
