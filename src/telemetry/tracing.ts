// OpenTelemetry traces: one trace from the REST request through the workflow start, the
// workflow, its activities and the device frame, exported over OTLP/HTTP.
//
// Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set. Off means no tracer provider is registered:
// `@opentelemetry/api` then hands out its no-op tracer, the REST middleware and the Temporal
// interceptors are not installed, and the workflow bundle carries no tracing code.
import { createRequire } from 'node:module';
import { trace, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { ClientInterceptors } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import type { WorkerOptions } from '@temporalio/worker';
import type { Config } from '../config.ts';

/** Name of the tracer our own spans (REST requests, device frames) come from. */
export const TRACER_NAME = 'jarvis-orchestrator';

/**
 * The interceptors package's workflow side: it must be inside the workflow bundle (it runs in
 * the workflow sandbox, deterministically, and hands finished spans out through a sink).
 */
export const WORKFLOW_TRACING_MODULE = createRequire(import.meta.url).resolve(
  '@temporalio/interceptors-opentelemetry/lib/workflow-interceptors',
);

export interface Tracing {
  readonly enabled: boolean;
  /** Our spans' tracer; undefined when tracing is off (nothing to install). */
  readonly tracer: Tracer | undefined;
  /** For the Temporal client: StartWorkflow / SignalWorkflow spans, their context sent in headers. */
  clientInterceptors(): ClientInterceptors | undefined;
  /**
   * For a worker: activity spans, and for workflows (`workflows: true`) the workflow interceptors
   * and the sink that exports their spans. Empty when tracing is off.
   */
  workerOptions(opts: { workflows: boolean }): Pick<WorkerOptions, 'interceptors' | 'sinks'>;
  /** Exports what is still buffered, then stops exporting. */
  shutdown(): Promise<void>;
}

export const TRACING_OFF: Tracing = {
  enabled: false,
  tracer: undefined,
  clientInterceptors: () => undefined,
  workerOptions: () => ({}),
  shutdown: async () => undefined,
};

let started: Tracing | undefined;

/**
 * Registers the process's tracer provider when OTEL_EXPORTER_OTLP_ENDPOINT is set. The provider,
 * its context manager and propagator are process-wide (OpenTelemetry's globals), so the first
 * call decides and later calls (several API nodes in one process) share it.
 */
export function startTracing(config: Pick<Config, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_SERVICE_NAME' | 'NODE_ID'>): Tracing {
  if (started) return started;
  if (!config.OTEL_EXPORTER_OTLP_ENDPOINT) return TRACING_OFF;

  const resource = new Resource({
    'service.name': config.OTEL_SERVICE_NAME,
    'service.instance.id': config.NODE_ID,
  });
  // The general OTLP endpoint names the collector; traces go to its /v1/traces (OTLP spec).
  // OTEL_EXPORTER_OTLP_HEADERS (e.g. an API key) is read by the exporter itself.
  const exporter = new OTLPTraceExporter({ url: `${config.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces` });
  const processor: SpanProcessor = new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 });
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  // Global: AsyncLocalStorage context (the active span follows awaits) and W3C trace context.
  provider.register();
  const tracer = trace.getTracer(TRACER_NAME);

  started = {
    enabled: true,
    tracer,
    clientInterceptors: () => ({ workflow: [new OpenTelemetryWorkflowClientInterceptor({ tracer })] }),
    workerOptions: ({ workflows }) => ({
      interceptors: {
        activity: [(ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx, { tracer }),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        })],
        ...(workflows ? { workflowModules: [WORKFLOW_TRACING_MODULE] } : {}),
      },
      ...(workflows ? { sinks: { exporter: makeWorkflowExporter(processor, resource) } } : {}),
    }),
    shutdown: () => provider.shutdown(),
  };
  return started;
}
