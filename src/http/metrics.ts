// Prometheus metrics: GET /metrics in the text exposition format (not the JSON envelope).
// One Registry per app instance (not prom-client's global one), so several API nodes in one
// process (tests) each expose their own numbers.
//
// - http_requests_total{method,route,status} and http_request_duration_seconds{method,route,status}:
//   `route` is the route pattern (`/api/v1/tasks/:id`), never the raw URL, and `unmatched` for
//   paths no route knows (so ids and scanners cannot blow up the label set);
// - jarvis_runs{status}: tasks per status, one SQL query at scrape time;
// - jarvis_connected_devices, jarvis_connected_monitors: this node's sockets;
// - the default Node process metrics (CPU, memory, event loop lag, GC, handles);
// - with TEMPORAL_METRICS_ADDRESS set, the Temporal SDK's `temporal_*` worker metrics after ours.
import { timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { TASK_STATUSES } from '../db/entities.ts';
import type { Orm } from '../db/orm.ts';
import type { Logger } from '../logger.ts';
import { errors } from '../errors.ts';
import { dbOf } from '../db/sql.ts';
import * as tasksDb from '../db/tasks.ts';

export const METRICS_PATH = '/metrics';
const UNMATCHED = 'unmatched';
/** The runs query must not hold a scrape (Prometheus times out at 10 s by default). */
const RUNS_QUERY_TIMEOUT_MS = 2000;

export interface SocketCounts {
  devices: number;
  monitors: number;
}

export interface MetricsDeps {
  orm: Orm;
  logger: Logger;
  /** This node's WebSocket connections (the gateway's `counts`). */
  counts?: () => SocketCounts;
  /** When set, GET /metrics needs `Authorization: Bearer <token>`. */
  token?: string;
  /**
   * The routers whose patterns label requests that never reached them (refused earlier, e.g. a
   * 429 from the rate limiter): the pattern a request would have matched.
   */
  routers?: () => Router[];
  /** More exposition text for the same scrape: the Temporal SDK's worker metrics. */
  sdkMetrics?: () => Promise<string>;
}

/** The route pattern a request matched (or would have), or `unmatched`. */
export function routeLabel(ctx: Context, routers: Router[] = []): string {
  const matched = (ctx as { _matchedRoute?: string | RegExp })._matchedRoute;
  if (typeof matched === 'string') return matched;
  for (const router of routers) {
    const layer = router.match(ctx.path, ctx.method).pathAndMethod.filter((l) => l.methods.length > 0).at(-1);
    if (layer && typeof layer.path === 'string') return layer.path;
  }
  return UNMATCHED;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly deps: MetricsDeps;
  private readonly requests: RequestMetrics;

  constructor(deps: MetricsDeps) {
    this.deps = deps;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new RequestMetrics(this.registry);
    const { orm, logger } = deps;
    new Gauge({
      name: 'jarvis_runs',
      help: 'Tasks (runs) by status, all users',
      labelNames: ['status'],
      registers,
      async collect() {
        try {
          const rows = await withTimeout(
            dbOf(orm).then((db) => tasksDb.countByStatus(db)),
            RUNS_QUERY_TIMEOUT_MS,
          );
          this.reset();
          for (const s of TASK_STATUSES) this.set({ status: s }, 0);
          for (const r of rows) this.set({ status: r.status }, Number(r.n));
        } catch (err) {
          // The scrape still answers, without this metric (no stale numbers).
          this.reset();
          logger.warn({ err }, 'metrics: counting runs failed');
        }
      },
    });
    new Gauge({
      name: 'jarvis_connected_devices',
      help: 'Devices connected to this API node over the WebSocket',
      registers,
      collect() {
        this.set(deps.counts?.().devices ?? 0);
      },
    });
    new Gauge({
      name: 'jarvis_connected_monitors',
      help: 'Monitors connected to this API node over the WebSocket',
      registers,
      collect() {
        this.set(deps.counts?.().monitors ?? 0);
      },
    });
  }

  /** Koa middleware (early: it times the whole request and sees the final status). */
  middleware() {
    return async (ctx: Context, next: Next) => {
      const start = performance.now();
      let failed = false;
      try {
        await next();
      } catch (err) {
        failed = true;
        throw err;
      } finally {
        this.requests.record(ctx.method, routeLabel(ctx, this.deps.routers?.()), failed ? 500 : ctx.status, (performance.now() - start) / 1000);
      }
    };
  }

  /** GET /metrics */
  router(): Router {
    const router = new Router();
    const expected = this.deps.token ? Buffer.from(`Bearer ${this.deps.token}`) : undefined;
    router.get(METRICS_PATH, async (ctx) => {
      if (expected) {
        const given = Buffer.from(ctx.get('Authorization'));
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
          throw errors.unauthenticated('metrics token required');
        }
      }
      const [ours, sdk] = await Promise.all([this.registry.metrics(), this.deps.sdkMetrics?.() ?? '']);
      const text = sdk ? `${ours}${ours.endsWith('\n') ? '' : '\n'}${sdk}` : ours;
      ctx.type = this.registry.contentType;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = text;
    });
    return router;
  }
}

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const REQUEST_LABELS = ['method', 'route', 'status'] as const;

/**
 * http_requests_total and http_request_duration_seconds, by method, route pattern and status. The
 * label sets stay few (routes x methods x statuses). prom-client validates and hashes the labels
 * on every inc and observe, a labeled child's too, so children kept per label set would buy
 * nothing: one fresh labels object per request is the cheap way.
 */
export class RequestMetrics {
  private readonly total: Counter<(typeof REQUEST_LABELS)[number]>;
  private readonly duration: Histogram<(typeof REQUEST_LABELS)[number]>;

  constructor(registry: Registry) {
    this.total = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status',
      labelNames: REQUEST_LABELS,
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time to answer HTTP requests, by method, route pattern and status',
      labelNames: REQUEST_LABELS,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
  }

  record(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.total.inc(labels);
    this.duration.observe(labels, seconds);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
