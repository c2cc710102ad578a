import { pino, type DestinationStream, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';

export type { Logger };

/**
 * Structured logs. Secrets are redacted wherever they could appear. `stream`: by default stdout,
 * as JSON lines for collectors; on a terminal, readable lines (pino-pretty, in this thread and
 * synchronous, so a crash's last lines are not lost in a worker's buffer).
 */
export function createLogger(level: string, name = 'jarvis', stream?: DestinationStream): Logger {
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
  const destination = stream ?? (process.stdout.isTTY ? prettyStdout() : undefined);
  return destination ? pino(options, destination) : pino(options);
}

function prettyStdout(): DestinationStream {
  return PinoPretty({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
}
