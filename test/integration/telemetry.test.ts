// What operators see inside (docs/operations.md): the Temporal SDK's worker metrics in the same
// scrape as ours, and one OpenTelemetry trace from the REST request through the workflow start,
// the workflow, the dispatch activity to the device frame, received by an OTLP/HTTP endpoint
// on 127.0.0.1 the way a collector would receive it.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bundleWorkflowCode } from '@temporalio/worker';
import { DeviceClient, demoHandlers } from '../../src/clients/device-client.ts';
import { freePort } from '../../src/temporal/dev-server.ts';
import { WORKFLOW_BUNDLE_OPTIONS } from '../../src/task-worker.ts';
import { WORKFLOW_TRACING_MODULE } from '../../src/telemetry/tracing.ts';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

/** A span as OTLP/JSON carries it (ids in hex). */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
}

/** A minimal OTLP/HTTP trace receiver: keeps every span posted to /v1/traces. */
class OtlpReceiver {
  readonly spans: OtlpSpan[] = [];
  readonly contentTypes = new Set<string>();
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.contentTypes.add(String(req.headers['content-type']));
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[];
        };
        for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) this.spans.push(...ss.spans);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

const receiver = new OtlpReceiver();
let sys: System;
let user: { token: string; userId: string };
let device: { id: string; deviceToken: string };
let pc: DeviceClient;
let sdkMetricsPort: number;

beforeAll(async () => {
  await receiver.start();
  sdkMetricsPort = await freePort();
  // Tracing puts the interceptors package's workflow side into the bundle.
  const { code } = await bundleWorkflowCode({
    ...WORKFLOW_BUNDLE_OPTIONS,
    workflowInterceptorModules: [WORKFLOW_TRACING_MODULE],
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error },
  });
  sys = await startSystem({
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      TEMPORAL_METRICS_ADDRESS: `127.0.0.1:${sdkMetricsPort}`,
    },
    workflowBundle: { code },
  });
  user = await signup(sys.api);
  device = await addDevice(sys.api, user.token);
  pc = new DeviceClient({ url: sys.wsUrl, token: device.deviceToken, handlers: demoHandlers });
  await pc.start();
}, 120_000);

afterAll(async () => {
  await pc?.stop();
  await sys?.stop();
  await receiver.stop();
});

/** Submits a one-step run (with the caller's trace context when given) and waits for its end. */
async function runToCompletion(headers: Record<string, string> = {}): Promise<string> {
  const workflowId = await addWorkflow(sys.api, user.token, linear([{ type: 'demo.echo', params: { text: 'traced' } }]));
  const res = await sys.api.req('POST', '/api/v1/tasks', {
    body: { workflow_id: workflowId, device_id: device.id }, token: user.token, headers,
  });
  expect(res.status).toBe(201);
  const taskId: string = res.body.data.task.id;
  await eventually(async () => (await sys.api.get(`/tasks/${taskId}`, user.token)).body.data.task.status === 'completed', 30_000, 'run completed');
  return taskId;
}

describe('traces', () => {
  it('link the REST request, the workflow start, the workflow, the dispatch activity and the device frame in one trace', async () => {
    // The caller's own trace context: the request span must continue it.
    const callerTrace = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const taskId = await runToCompletion({ traceparent: `00-${callerTrace}-${callerSpan}-01` });

    const attr = (s: OtlpSpan, key: string) => s.attributes?.find((a) => a.key === key)?.value.stringValue;
    const frame = await eventually(
      async () => receiver.spans.find((s) => s.name === 'device step/dispatch' && attr(s, 'jarvis.task_id') === taskId),
      20_000, 'the device frame span',
    );
    const byId = (id: string | undefined) => receiver.spans.find((s) => s.spanId === id);
    // Every hop arrives (the workflow's spans leave through its sink when they end).
    const chain = await eventually(async () => {
      const hops: OtlpSpan[] = [frame];
      for (let s = byId(frame.parentSpanId); s; s = byId(s.parentSpanId)) hops.push(s);
      return hops.at(-1)?.parentSpanId === callerSpan ? hops : undefined;
    }, 20_000, 'every span from the device frame up to the request');

    expect(chain.map((s) => s.name)).toEqual([
      'device step/dispatch',
      'RunActivity:dispatchStep',
      'StartActivity:dispatchStep',
      'RunWorkflow:taskRunWorkflow',
      'StartWorkflow:taskRunWorkflow',
      'POST /api/v1/tasks',
    ]);
    expect(new Set(chain.map((s) => s.traceId))).toEqual(new Set([callerTrace]));
    const request = chain.at(-1)!;
    expect(request.kind).toBe(2); // SERVER
    expect(attr(request, 'http.route')).toBe('/api/v1/tasks');
    // The run's workflow id (`task-<id>`), on the start and on the activity.
    expect(attr(chain[4], 'temporalWorkflowId')).toBe(`task-${taskId}`);
    expect(attr(chain[1], 'temporalWorkflowId')).toBe(`task-${taskId}`);
    expect(receiver.contentTypes).toEqual(new Set(['application/json']));
  });
});

describe('metrics', () => {
  it('GET /metrics shows the Temporal SDK worker metrics beside ours', async () => {
    await runToCompletion();
    const res = await fetch(`${sys.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    // Ours,
    expect(text).toMatch(/^http_requests_total\{method="POST",route="\/api\/v1\/tasks",status="201"\} \d+/m);
    expect(text).toMatch(/^jarvis_connected_devices \d+/m);
    // and the SDK's, for this system's own task queue and the device activity it ran.
    expect(text).toMatch(new RegExp(`^temporal_workflow_completed_total\\{[^}]*task_queue="${sys.config.TASK_QUEUE}"[^}]*\\} [1-9]`, 'm'));
    expect(text).toMatch(/^temporal_activity_execution_latency_seconds_count\{[^}]*activity_type="dispatchStep"[^}]*\} [1-9]/m);
    // The SDK's endpoint itself, what a worker-only process is scraped on.
    const direct = await (await fetch(`http://127.0.0.1:${sdkMetricsPort}/metrics`)).text();
    expect(direct).toMatch(/^temporal_workflow_task_execution_latency_seconds_bucket\{/m);
    // One exposition: each metric family described once.
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(new Set(types).size).toBe(types.length);
  });
});
