// The Koa app: middleware in order (errors first), health, and the /api/v1 routes.
import Koa, { type Context } from 'koa';
import type { Tracer } from '@opentelemetry/api';
import Router from '@koa/router';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import { accountLimitsOf, type Config } from '../config.ts';
import { ping, type Orm } from '../db/orm.ts';
import { OwnedRepos } from '../db/owned.ts';
import type { Logger } from '../logger.ts';
import { Accounts } from '../domain/accounts.ts';
import { Sessions, type SessionCache } from '../domain/sessions.ts';
import { looksLikeJwt, TokenError, type AccessTokens } from '../domain/tokens.ts';
import type { TaskEngine } from '../domain/tasks.ts';
import { errors } from '../errors.ts';
import { corsFor } from './cors.ts';
import { accessLog, envelope, errorHandler, requestId, securityHeaders } from './middleware.ts';
import { Metrics, type SocketCounts } from './metrics.ts';
import { docsRouter } from './openapi.ts';
import { monitorPage } from './monitor-page.ts';
import { RateLimits } from './rate-limit.ts';
import { httpSpans } from './request-spans.ts';
import { API_PREFIX, mount, type RouteSpec } from './route.ts';
import { accountRoutes } from './routes/account.ts';
import { artifactRoutes } from './routes/artifacts.ts';
import { authRoutes } from './routes/auth.ts';
import { deviceRoutes, type DeviceSockets } from './routes/devices.ts';
import { fileRoutes } from './routes/files.ts';
import { logRoutes } from './routes/logs.ts';
import { notificationRoutes } from './routes/notifications.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { pushRoutes } from './routes/push.ts';
import { vapidKeysOf } from '../domain/web-push.ts';
import { scheduleRoutes } from './routes/schedules.ts';
import { statsRoutes } from './routes/stats.ts';
import { taskRoutes } from './routes/tasks.ts';
import { workflowVersionRoutes } from './routes/workflow-versions.ts';
import { workflowRoutes } from './routes/workflows.ts';

declare module 'koa' {
  interface DefaultState {
    requestId: string;
    em: EntityManager;
    userId: string;
    sessionId: string;
    repos: OwnedRepos;
  }
}

export { API_PREFIX };

export interface AppDeps {
  config: Config;
  logger: Logger;
  orm: Orm;
  temporal: Client;
  /** Starts runs eagerly where a task worker shares this process (TaskEngine.eagerStarts). */
  eagerStarts?: Client;
  tokens: AccessTokens;
  sockets: DeviceSockets;
  /** This node's WebSocket connections, for /metrics (the gateway's `counts`). */
  counts?: () => SocketCounts;
  /** Open sessions this node may trust for a moment (without it, each request reads `sessions`). */
  sessionCache?: SessionCache;
  /** With tracing on: a span per request (src/http/request-spans.ts). */
  tracer?: Tracer;
  /** The Temporal SDK's metrics text, appended to GET /metrics (src/telemetry/sdk-metrics.ts). */
  sdkMetrics?: () => Promise<string>;
}

/**
 * A request's `ctx.state`: the same fields, in the same order, on every request, so the code that
 * reads them sees one object shape. One EntityManager (identity map, unit of work) per request,
 * forked when first used: the hottest reads go to the pool directly and never need one. (A
 * getter defined on each request's plain object made a new shape per request.)
 */
class RequestState {
  requestId!: string;
  userId!: string;
  sessionId!: string;
  repos!: OwnedRepos;
  readonly #orm: Orm;
  #em: EntityManager | undefined;

  constructor(orm: Orm) {
    this.#orm = orm;
  }

  get em(): EntityManager {
    return (this.#em ??= this.#orm.em.fork() as EntityManager);
  }
}

/** Every /api/v1 route, as data (the OpenAPI document is generated from this list). */
export function apiRoutes(deps: Pick<AppDeps, 'config' | 'temporal' | 'eagerStarts' | 'tokens' | 'sockets' | 'sessionCache'>): RouteSpec[] {
  const engine: TaskEngine = {
    temporal: deps.temporal,
    ...(deps.eagerStarts ? { eagerStarts: deps.eagerStarts } : {}),
    taskQueue: deps.config.TASK_QUEUE,
    offlineTimeoutMs: deps.config.DEVICE_OFFLINE_TIMEOUT_MS,
    presenceStaleMs: deps.config.WS_HEARTBEAT_MS * 3,
    limits: accountLimitsOf(deps.config),
  };
  const sessions = new Sessions(deps.tokens, deps.config.REFRESH_TOKEN_TTL_S, deps.sessionCache);
  const accounts = new Accounts(sessions);
  return [
    ...authRoutes(accounts, sessions, (sid) => deps.sockets.endLoginSession(sid, 'logged out')),
    ...accountRoutes(accounts, {
      temporal: deps.temporal, sessions, runsEndWithinMs: deps.config.ACCOUNT_DELETE_RUNS_END_MS,
    }),
    ...deviceRoutes(deps.sockets, engine),
    ...workflowRoutes(engine),
    ...workflowVersionRoutes(),
    ...taskRoutes({ engine, temporalUiUrl: deps.config.TEMPORAL_UI_URL, namespace: deps.config.TEMPORAL_NAMESPACE }),
    ...artifactRoutes(),
    ...scheduleRoutes(engine),
    ...logRoutes(),
    ...fileRoutes({ dataDir: deps.config.DATA_DIR, maxBytes: deps.config.FILE_MAX_BYTES, quotaBytes: deps.config.USER_QUOTA_BYTES }),
    ...statsRoutes({ presenceStaleMs: deps.config.WS_HEARTBEAT_MS * 3 }),
    ...notificationRoutes(),
    ...webhookRoutes({ allowPrivateTargets: deps.config.WEBHOOK_ALLOW_PRIVATE_TARGETS, maxWebhooks: engine.limits.webhooks }),
    ...pushRoutes({
      vapid: () => vapidKeysOf(deps.config), allowPrivateTargets: deps.config.WEBHOOK_ALLOW_PRIVATE_TARGETS, fcm: Boolean(deps.config.FCM_CREDENTIALS_FILE),
      limits: engine.limits,
    }),
  ];
}

export function createApp(deps: AppDeps): Koa {
  const { logger, orm, tokens } = deps;
  const sessions = new Sessions(tokens, deps.config.REFRESH_TOKEN_TTL_S, deps.sessionCache);
  // Client IP: the socket's address; behind a load balancer (TRUST_PROXY) the last
  // X-Forwarded-For hop, the one the balancer appended (earlier hops are the client's to forge).
  const app = new Koa({ proxy: deps.config.TRUST_PROXY, maxIpsCount: 1 });
  // Errors Koa sees outside our handler: mostly clients hanging up mid-request. Log, don't print.
  app.on('error', (err: Error & { code?: string }) => {
    const hangUp = err.code === 'ECONNRESET' || err.code === 'ERR_STREAM_PREMATURE_CLOSE' || /aborted|Parse Error/i.test(err.message);
    if (hangUp) logger.debug({ err }, 'client went away mid-request');
    else logger.error({ err }, 'http server error');
  });
  const routers: Router[] = [];
  const metrics = new Metrics({
    orm, logger, counts: deps.counts, token: deps.config.METRICS_TOKEN, routers: () => routers, sdkMetrics: deps.sdkMetrics,
  });
  const limits = new RateLimits(deps.config, API_PREFIX);

  // First: every request's state has one shape (see RequestState), before anything sets a field.
  app.use((ctx, next) => {
    ctx.state = new RequestState(orm);
    return next();
  });
  app.use(requestId());
  if (deps.tracer) app.use(httpSpans(deps.tracer, () => routers));
  app.use(metrics.middleware());
  app.use(errorHandler(logger));
  app.use(securityHeaders());
  // The access line's fields are fixed (request id, method, path without the query, status, time):
  // nothing to redact, so its logger skips the redaction pass every other line gets.
  app.use(accessLog(logger.child({ component: 'http' }, { redact: [] })));
  // Before the rate limits: a preflight is answered here and spends nothing, and a 429 still
  // carries the CORS headers its page needs to read it.
  app.use(corsFor(deps.config.CORS_ORIGINS));
  app.use(limits.middleware());

  const authenticate = async (ctx: Context) => {
    const header = ctx.get('Authorization');
    const m = /^Bearer (.+)$/i.exec(header);
    if (!m) throw errors.unauthenticated('missing bearer token');
    const token = m[1].trim();
    if (!looksLikeJwt(token)) throw errors.unauthenticated('token invalid');
    try {
      const { userId, sessionId } = await tokens.verify(token);
      // Logout and refresh-token reuse revoke the session, and every access token of it.
      if (!(await sessions.isOpen(() => ctx.state.em, userId, sessionId))) throw new TokenError('token revoked');
      ctx.state.userId = userId;
      ctx.state.sessionId = sessionId;
      ctx.state.repos = new OwnedRepos(() => ctx.state.em, userId, orm.em);
    } catch (err) {
      if (err instanceof TokenError) throw errors.unauthenticated(err.message);
      throw err;
    }
  };

  const health = new Router();
  health.get('/healthz', (ctx) => envelope(ctx, { status: 'ok' }));
  health.get('/readyz', async (ctx) => {
    const [postgres, temporal] = await Promise.all([
      ping(orm),
      deps.temporal.connection
        .withDeadline(Date.now() + 3000, () => deps.temporal.workflowService.getSystemInfo({}))
        .then(() => true, () => false),
    ]);
    if (!postgres || !temporal) {
      ctx.status = 503;
      ctx.body = { code: 5000, message: 'not ready', data: { postgres, temporal }, request_id: ctx.state.requestId };
      return;
    }
    envelope(ctx, { postgres, temporal });
  });
  app.use(health.routes());
  app.use(metrics.router().routes());

  const routes = apiRoutes(deps);
  // GET /api/v1/openapi.json and GET /docs: the document is built once, here, from `routes`.
  const docs = docsRouter(routes, { serverUrl: deps.config.PUBLIC_URL });
  app.use(docs.routes());
  // GET /monitor: the web monitor page.
  app.use(monitorPage());

  const api = new Router({ prefix: API_PREFIX });
  mount(api, routes, {
    async authenticate(ctx) {
      await authenticate(ctx);
      limits.checkUser(ctx);
    },
    limit: (ctx, limit) => limits.checkRoute(ctx, limit),
  });
  routers.push(docs, api);
  app.use(api.routes());
  app.use(api.allowedMethods());
  return app;
}
