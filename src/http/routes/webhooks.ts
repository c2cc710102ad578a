import { z } from 'zod';
import { NOTIFICATION_KINDS, NotificationDelivery, WebhookEndpoint } from '../../db/entities.ts';
import * as deliveriesDb from '../../db/deliveries.ts';
import * as webhooksDb from '../../db/webhooks.ts';
import { refusedOverLimit } from '../../db/quotas.ts';
import { newWebhookSecret } from '../../domain/webhook-delivery.ts';
import { targetProblem } from '../../domain/webhook-targets.ts';
import { errors } from '../../errors.ts';
import { envelope } from '../middleware.ts';
import { cursorParam, keysetPage, pageQuery } from '../paging.ts';
import { defineRoute, idParams } from '../route.ts';
import { deleted } from '../schemas/common.ts';
import {
  deliveryData, deliveryPage, webhookCreated, webhookData, webhookPage,
  type Delivery as DeliveryOut, type WebhookEndpoint as EndpointOut,
} from '../schemas/webhooks.ts';

export interface WebhookRouteOptions {
  /** WEBHOOK_ALLOW_PRIVATE_TARGETS: loopback, private and link-local URLs are refused unless set. */
  allowPrivateTargets: boolean;
  /** ACCOUNT_MAX_WEBHOOKS. */
  maxWebhooks: number;
}

const kinds = z.array(z.enum(NOTIFICATION_KINDS)).max(NOTIFICATION_KINDS.length);
const description = z.string().trim().max(255).nullable();

export function webhookRoutes(opts: WebhookRouteOptions) {
  const url = z.string().max(2048).superRefine((v, ctx) => {
    const problem = targetProblem(v, opts.allowPrivateTargets);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
  const createBody = z.object({ url, kinds: kinds.optional(), description: description.optional() }).strict()
    .meta({ examples: [{ url: 'https://example.com/hooks/jarvis', kinds: ['run.failed'], description: 'Failures' }] });
  const updateBody = z.object({ url: url.optional(), kinds: kinds.optional(), enabled: z.boolean().optional(), description: description.optional() }).strict()
    .meta({ examples: [{ enabled: false }] });
  const deliveryQuery = pageQuery.extend({ cursor: cursorParam, status: z.enum(['pending', 'succeeded', 'failed']).optional() }).strict();
  const listQuery = pageQuery.extend({ cursor: cursorParam }).strict();

  return [
    defineRoute<z.infer<typeof createBody>>({
      method: 'post', path: '/webhooks', tag: 'webhooks', auth: 'user',
      summary: 'Add a webhook: notifications of the chosen kinds POSTed to a URL, signed per Standard Webhooks',
      body: createBody, success: { status: 201, description: 'The webhook and its signing secret (shown only now)', data: webhookCreated }, errors: [400, 401, 403],
      async handler(ctx, { body }) {
        const secret = newWebhookSecret();
        const row = await webhooksDb.insertEndpoint(ctx.state.repos, {
          url: body.url, secret, kinds: [...new Set(body.kinds ?? [])], description: body.description ?? null,
        }, opts.maxWebhooks).catch(refusedOverLimit('webhooks', opts.maxWebhooks));
        envelope(ctx, { webhook: presentEndpoint(row), secret }, 201);
      },
    }),
    defineRoute<undefined, z.infer<typeof listQuery>>({
      method: 'get', path: '/webhooks', tag: 'webhooks', auth: 'user', summary: 'List my webhooks, newest first',
      query: listQuery, success: { status: 200, description: 'A page of my webhooks', data: webhookPage }, errors: [400, 401],
      async handler(ctx, { query }) {
        envelope(ctx, await keysetPage(ctx.state.repos, WebhookEndpoint, {}, query, presentEndpoint));
      },
    }),
    defineRoute<z.infer<typeof updateBody>, undefined, z.infer<typeof idParams>>({
      method: 'put', path: '/webhooks/:id', tag: 'webhooks', auth: 'user', summary: 'Change a webhook (URL, kinds, on/off, description)',
      params: idParams, body: updateBody, success: { status: 200, description: 'The webhook as changed', data: webhookData }, errors: [400, 401, 404],
      async handler(ctx, { params, body }) {
        const patch = { ...body, ...(body.kinds ? { kinds: [...new Set(body.kinds)] } : {}) };
        envelope(ctx, { webhook: presentEndpoint(await webhooksDb.updateEndpoint(ctx.state.repos, params.id, patch)) });
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'delete', path: '/webhooks/:id', tag: 'webhooks', auth: 'user', summary: 'Delete a webhook and its delivery log',
      params: idParams, success: { status: 200, description: 'Deleted', data: deleted }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        await webhooksDb.removeEndpoint(ctx.state.repos, params.id);
        envelope(ctx, { deleted: true });
      },
    }),
    defineRoute<undefined, z.infer<typeof deliveryQuery>, z.infer<typeof idParams>>({
      method: 'get', path: '/webhooks/:id/deliveries', tag: 'webhooks', auth: 'user',
      summary: 'The delivery log of one of my webhooks, newest first (status=failed: those that spent their retries)',
      params: idParams, query: deliveryQuery, success: { status: 200, description: 'A page of deliveries', data: deliveryPage }, errors: [400, 401, 404],
      async handler(ctx, { params, query }) {
        const endpoint = await webhooksDb.getEndpoint(ctx.state.repos, params.id);
        envelope(ctx, await keysetPage(ctx.state.repos, NotificationDelivery, deliveriesDb.deliveriesWhere(endpoint.id, query.status), query, presentDelivery));
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'post', path: '/webhooks/deliveries/:id/redeliver', tag: 'webhooks', auth: 'user',
      summary: 'Send a finished delivery again (same webhook-id); 409 while it is still under way',
      params: idParams, success: { status: 202, description: 'The delivery, pending again', data: deliveryData }, errors: [400, 401, 404, 409],
      async handler(ctx, { params }) {
        await deliveriesDb.getDelivery(ctx.state.repos, params.id); // 404 unless it is mine
        const row = await deliveriesDb.redeliver(ctx.state.repos, params.id);
        if (!row) throw errors.conflict('the delivery is still under way');
        envelope(ctx, { delivery: presentDelivery(row) }, 202);
      },
    }),
  ];
}

export function presentEndpoint(e: WebhookEndpoint): z.output<typeof EndpointOut> {
  return {
    id: e.id, url: e.url, kinds: e.kinds, enabled: e.enabled, description: e.description ?? null,
    created_at: e.createdAt.toISOString(), updated_at: e.updatedAt.toISOString(),
  };
}

export function presentDelivery(d: NotificationDelivery): z.output<typeof DeliveryOut> {
  return {
    id: d.id, notification_id: d.notificationId, channel: d.channel, webhook_id: d.endpointId ?? null, push_subscription_id: d.subscriptionId ?? null,
    fcm_token_id: d.fcmTokenId ?? null,
    status: d.status, not_before: d.notBefore ? d.notBefore.toISOString() : null, attempts: d.attempts,
    redeliveries: d.redeliveries, last_status_code: d.lastStatusCode ?? null, last_error: d.lastError ?? null,
    created_at: d.createdAt.toISOString(), finished_at: d.finishedAt ? d.finishedAt.toISOString() : null,
  };
}
