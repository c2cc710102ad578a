import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Structured logs. Secrets are redacted wherever they could appear. `stream`: stdout by default. */
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
  return stream ? pino(options, stream) : pino(options);
}
