// The request metrics' exposition is what dashboards and alerts read: names, label names and
// order, bucket bounds. Checked here against the text written out by hand.
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { RequestMetrics } from '../../src/http/metrics.ts';

const REQUESTS: [string, string, number, number][] = [
  ['GET', '/api/v1/tasks/:id', 200, 0.004],
  ['GET', '/api/v1/tasks/:id', 200, 0.005],
  ['GET', '/api/v1/tasks/:id', 200, 0.0051],
  ['GET', '/api/v1/tasks/:id', 404, 0.3],
  ['POST', '/api/v1/tasks', 201, 12],
  ['GET', 'unmatched', 404, 10],
  ['GET', '/api/v1/tasks/:id', 200, 0.7],
];

function linesOf(text: string, prefix: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(prefix));
}

describe('RequestMetrics', () => {
  it('exposes a counter and a histogram per method, route pattern and status', async () => {
    const registry = new Registry();
    const metrics = new RequestMetrics(registry);
    for (const [method, route, status, seconds] of REQUESTS) metrics.record(method, route, status, seconds);
    const text = await registry.metrics();

    expect(text).toContain('# TYPE http_requests_total counter');
    expect(text).toContain('# TYPE http_request_duration_seconds histogram');
    expect(linesOf(text, 'http_requests_total{').sort()).toEqual([
      'http_requests_total{method="GET",route="/api/v1/tasks/:id",status="200"} 4',
      'http_requests_total{method="GET",route="/api/v1/tasks/:id",status="404"} 1',
      'http_requests_total{method="GET",route="unmatched",status="404"} 1',
      'http_requests_total{method="POST",route="/api/v1/tasks",status="201"} 1',
    ]);
    // 0.004 and 0.005 fall in le=0.005 (bounds are inclusive), 0.0051 in 0.01, 0.7 in 1.
    const series = 'method="GET",route="/api/v1/tasks/:id",status="200"';
    const cumulative = [['0.005', 2], ['0.01', 3], ['0.025', 3], ['0.05', 3], ['0.1', 3], ['0.25', 3], ['0.5', 3], ['1', 4], ['2.5', 4], ['5', 4], ['10', 4], ['+Inf', 4]];
    expect(linesOf(text, `http_request_duration_seconds_bucket{le=`).filter((l) => l.includes(series))).toEqual(
      cumulative.map(([le, n]) => `http_request_duration_seconds_bucket{le="${le}",${series}} ${n}`),
    );
    expect(text).toContain(`http_request_duration_seconds_count{${series}} 4`);
    const sum = Number(linesOf(text, `http_request_duration_seconds_sum{${series}}`)[0]?.split(' ')[1]);
    expect(sum).toBeCloseTo(0.004 + 0.005 + 0.0051 + 0.7, 9);
    // 12 s is past the largest bound: only +Inf counts it.
    expect(text).toContain('http_request_duration_seconds_bucket{le="10",method="POST",route="/api/v1/tasks",status="201"} 0');
    expect(text).toContain('http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/api/v1/tasks",status="201"} 1');
  });

  it('starts over on reset', async () => {
    const registry = new Registry();
    const metrics = new RequestMetrics(registry);
    metrics.record('GET', '/x', 200, 0.1);
    expect(await registry.metrics()).toContain('http_requests_total{');
    registry.resetMetrics();
    const text = await registry.metrics();
    expect(text).not.toContain('http_requests_total{');
    expect(text).not.toContain('http_request_duration_seconds_count{');
  });
});
