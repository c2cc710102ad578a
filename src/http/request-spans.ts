// One server span per REST request, named by its route pattern (`POST /api/v1/tasks`), never
// the raw URL; an incoming `traceparent` makes it part of the caller's trace. Work the request
// does (the workflow start among it) runs inside the span, so its spans are children of it.
import { context, propagation, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import { routeLabel } from './metrics.ts';

export function httpSpans(tracer: Tracer, routers: () => Router[] = () => []) {
  return async (ctx: Context, next: Next) => {
    const parent = propagation.extract(context.active(), ctx.headers);
    const span = tracer.startSpan(`${ctx.method} ${ctx.path}`, {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': ctx.method, 'url.path': ctx.path },
    }, parent);
    let failed = false;
    try {
      await context.with(trace.setSpan(parent, span), next);
    } catch (err) {
      failed = true;
      span.recordException(err as Error);
      throw err;
    } finally {
      const route = routeLabel(ctx, routers());
      const status = failed ? 500 : ctx.status;
      span.updateName(`${ctx.method} ${route}`);
      span.setAttributes({
        'http.route': route,
        'http.response.status_code': status,
        ...(ctx.state.requestId ? { 'jarvis.request_id': ctx.state.requestId } : {}),
        ...(ctx.state.userId ? { 'jarvis.user_id': ctx.state.userId } : {}),
      });
      // Server spans: only 5xx are errors (a 4xx is the client's mistake, answered as designed).
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
  };
}
