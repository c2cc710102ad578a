// The Temporal SDK's own worker metrics (task slots, poll and execution latencies, sticky cache,
// requests to the server) come from the native core's Prometheus endpoint. GET /metrics appends
// that endpoint's text to ours, so one scrape of an API node sees both.
import type { Logger } from '../logger.ts';

/** The scrape must not wait on the core for long (Prometheus times out at 10 s by default). */
const SDK_SCRAPE_TIMEOUT_MS = 2000;

/** Where to read the core's exposition: its bind address, a wildcard host read on loopback. */
export function sdkMetricsUrl(bindAddress: string): string {
  const m = /^(.*):(\d+)$/.exec(bindAddress.trim());
  if (!m) throw new Error(`not a host:port address: ${bindAddress}`);
  const host = m[1] === '0.0.0.0' || m[1] === '' ? '127.0.0.1' : m[1] === '[::]' ? '[::1]' : m[1];
  return `http://${host}:${m[2]}/metrics`;
}

/**
 * Reads the core's exposition text. On failure the scrape still answers with our own metrics
 * (and a warning in the log), never with stale or partial numbers of the SDK's.
 */
export function sdkMetricsReader(url: string, logger: Logger): () => Promise<string> {
  return async () => {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(SDK_SCRAPE_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const text = await res.text();
      return text.endsWith('\n') || text === '' ? text : `${text}\n`;
    } catch (err) {
      logger.warn({ err, url }, 'metrics: reading the Temporal SDK metrics failed');
      return '';
    }
  };
}
