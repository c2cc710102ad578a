// RequestSeries must expose exactly what prom-client's own Counter and Histogram would for the
// same requests: checked against them, side by side.
import { describe, expect, it } from '@jest/globals';
import { Counter, Histogram, Registry } from 'prom-client';
import { RequestSeries } from '../../src/http/metrics.ts';

const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const REQUESTS: [string, string, number, number][] = [
  ['GET', '/api/v1/tasks/:id', 200, 0.004],
  ['GET', '/api/v1/tasks/:id', 200, 0.005],
  ['GET', '/api/v1/tasks/:id', 200, 0.0051],
  ['GET', '/api/v1/tasks/:id', 404, 0.3],
  ['POST', '/api/v1/tasks', 201, 12],
  ['GET', 'unmatched', 404, 10],
  ['GET', '/api/v1/tasks/:id', 200, 0.7],
];

describe('RequestSeries', () => {
  it('exposes the text prom-client\'s Counter and Histogram would', async () => {
    const ours = new Registry();
    const series = new RequestSeries(BOUNDS);
    ours.registerMetric(series.counter('http_requests_total', 'requests'));
    ours.registerMetric(series.histogram('http_request_duration_seconds', 'durations'));

    const theirs = new Registry();
    const labelNames = ['method', 'route', 'status'] as const;
    const counter = new Counter({ name: 'http_requests_total', help: 'requests', labelNames, registers: [theirs] });
    const histogram = new Histogram({ name: 'http_request_duration_seconds', help: 'durations', labelNames, buckets: BOUNDS, registers: [theirs] });

    for (const [method, route, status, seconds] of REQUESTS) {
      series.record(method, route, status, seconds);
      counter.inc({ method, route, status: String(status) });
      histogram.observe({ method, route, status: String(status) }, seconds);
    }
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toMatch(/^http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/api\/v1\/tasks\/:id",status="200"\} 2$/m);
    expect(text).toMatch(/^http_requests_total\{method="GET",route="\/api\/v1\/tasks\/:id",status="200"\} 4$/m);
  });

  it('starts over on reset', async () => {
    const registry = new Registry();
    const series = new RequestSeries(BOUNDS);
    registry.registerMetric(series.counter('c_total', 'c'));
    series.record('GET', '/x', 200, 0.1);
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain('c_total{');
  });
});
