// Routes the Temporal SDK's own logs (worker state, activity failures, native core) into our
// pino logger at its level, instead of raw console output; and, when given an address, serves
// the SDK's worker metrics there in the Prometheus format (src/telemetry/sdk-metrics.ts).
import { IllegalStateError } from '@temporalio/common';
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../logger.ts';

const LEVELS: Record<string, LogLevel> = {
  trace: 'TRACE', debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR', fatal: 'ERROR', silent: 'ERROR',
};

export interface RuntimeOptions {
  /**
   * Route the native core's logs through pino too. It holds a native handle that keeps the
   * process alive until exit, so tests (many files per process) leave it off; the core then
   * prints its own errors to stderr.
   */
  forwardCore?: boolean;
  /** host:port the core serves its Prometheus metrics on (TEMPORAL_METRICS_ADDRESS); none when unset. */
  metricsAddress?: string;
}

export function installTemporalRuntime(logger: Logger, { forwardCore = true, metricsAddress }: RuntimeOptions = {}): void {
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
        ...(metricsAddress ? {
          metrics: {
            // Prometheus conventions, like ours: seconds, unit and _total suffixes.
            prometheus: { bindAddress: metricsAddress, useSecondsForDurations: true, unitSuffix: true, countersTotalSuffix: true },
          },
        } : {}),
      },
    });
  } catch (err) {
    // Installed already (one per process): keep the first. Anything else (the metrics address
    // taken, say) is a setting to fix, not to run without.
    if (!(err instanceof IllegalStateError)) throw err;
  }
}
