// The telemetry settings: a bad address or endpoint stops the boot with the variable named, and
// the SDK's metrics are read where the core listens (a wildcard bind read on loopback).
import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { sdkMetricsUrl } from '../../src/telemetry/sdk-metrics.ts';

describe('telemetry settings', () => {
  it('accept host:port metrics addresses and an OTLP URL; tracing and SDK metrics are off by default', () => {
    const c = loadConfig({ TEMPORAL_METRICS_ADDRESS: '0.0.0.0:9464', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' });
    expect(c.TEMPORAL_METRICS_ADDRESS).toBe('0.0.0.0:9464');
    expect(c.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://127.0.0.1:4318');
    expect(loadConfig({ TEMPORAL_METRICS_ADDRESS: '[::1]:9464' }).TEMPORAL_METRICS_ADDRESS).toBe('[::1]:9464');
    const d = loadConfig({});
    expect(d.TEMPORAL_METRICS_ADDRESS).toBeUndefined();
    expect(d.OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
    expect(d.OTEL_SERVICE_NAME).toBe('jarvis-orchestrator');
  });

  it.each(['9464', '127.0.0.1', '127.0.0.1:99999', 'http://127.0.0.1:9464', 'host :1'])('refuse TEMPORAL_METRICS_ADDRESS=%s', (v) => {
    expect(() => loadConfig({ TEMPORAL_METRICS_ADDRESS: v })).toThrow(ConfigError);
    expect(() => loadConfig({ TEMPORAL_METRICS_ADDRESS: v })).toThrow(/TEMPORAL_METRICS_ADDRESS/);
  });

  it.each(['collector:4318', 'grpc://collector:4317', 'not a url'])('refuse OTEL_EXPORTER_OTLP_ENDPOINT=%s (OTLP/HTTP only)', (v) => {
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: v })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
  });

  it('read the SDK metrics on the bound host, loopback for a wildcard bind', () => {
    expect(sdkMetricsUrl('10.0.0.5:9464')).toBe('http://10.0.0.5:9464/metrics');
    expect(sdkMetricsUrl('0.0.0.0:9464')).toBe('http://127.0.0.1:9464/metrics');
    expect(sdkMetricsUrl('[::]:9464')).toBe('http://[::1]:9464/metrics');
  });
});
