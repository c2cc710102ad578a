import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured logs. Secrets are redacted wherever they could appear. */
export function createLogger(level: string, name = 'jarvis'): Logger {
  return pino({
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
  });
}
