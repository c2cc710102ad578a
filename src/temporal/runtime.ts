// Routes the Temporal SDK's own logs (worker state, activity failures, native core) into our
// pino logger at its level, instead of raw console output.
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../logger.ts';

const LEVELS: Record<string, LogLevel> = {
  trace: 'TRACE', debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR', fatal: 'ERROR', silent: 'ERROR',
};

/**
 * `forwardCore`: route the native core's logs through pino too. It holds a native handle that
 * keeps the process alive until exit, so tests (many files per process) leave it off; the
 * core then prints its own errors to stderr.
 */
export function installTemporalRuntime(logger: Logger, { forwardCore = true } = {}): void {
  const level = LEVELS[logger.level] ?? 'WARN';
  const sdk = logger.child({ component: 'temporal' });
  try {
    Runtime.install({
      logger: new DefaultLogger(level, (entry) => {
        const fn = entry.level === 'ERROR' ? 'error' : entry.level === 'WARN' ? 'warn' : entry.level === 'INFO' ? 'info' : 'debug';
        if (logger.level === 'silent') return;
        // API nodes' gateway workers run activities only, by design.
        if (entry.message.startsWith('No workflows registered')) return;
        sdk[fn]({ ...(entry.meta ?? {}) }, entry.message);
      }),
      telemetryOptions: {
        logging: forwardCore
          ? { filter: { core: level === 'TRACE' ? 'DEBUG' : level, other: 'ERROR' }, forward: {} }
          : { filter: { core: 'ERROR', other: 'ERROR' }, console: {} },
      },
    });
  } catch {
    // Installed already (one per process): keep the first.
  }
}
