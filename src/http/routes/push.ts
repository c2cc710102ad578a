import { z } from 'zod';
import type { PushSubscription } from '../../db/entities.ts';
import * as subscriptionsDb from '../../db/push-subscriptions.ts';
import type { VapidKeys } from '../../domain/web-push.ts';
import { targetProblem } from '../../domain/webhook-targets.ts';
import { errors } from '../../errors.ts';
import { envelope } from '../middleware.ts';
import { defineRoute, idParams } from '../route.ts';
import { deleted } from '../schemas/common.ts';
import { fcmTokenData, pushSubscriptionData, vapidKey, type PushSubscription as SubscriptionOut } from '../schemas/push.ts';
import * as fcmTokensDb from '../../db/fcm-tokens.ts';
import { refusedOverLimit } from '../../db/quotas.ts';
import type { AccountLimits } from '../../domain/tasks.ts';

export interface PushRouteOptions {
  /** The keys, read (or generated) when first needed; null: Web Push is off (production without VAPID keys). */
  vapid: () => VapidKeys | null;
  allowPrivateTargets: boolean;
  /** Whether FCM is configured (FCM_CREDENTIALS_FILE). */
  fcm: boolean;
  /** ACCOUNT_MAX_PUSH_SUBSCRIPTIONS, ACCOUNT_MAX_FCM_TOKENS. */
  limits: Pick<AccountLimits, 'pushSubscriptions' | 'fcmTokens'>;
}

const base64url = (what: string, bytes: number) =>
  z.string().regex(/^[A-Za-z0-9_-]+={0,2}$/, `must be base64url (${what})`)
    .refine((v) => Buffer.from(v, 'base64url').length === bytes, `must be ${bytes} bytes (${what})`);

export function pushRoutes(opts: PushRouteOptions) {
  let keys: VapidKeys | null | undefined;
  const enabled = () => {
    keys ??= opts.vapid();
    if (!keys) throw errors.unavailable('Web Push is not configured on this server (VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY)');
    return keys;
  };
  // A browser's PushSubscription.toJSON(), as it comes.
  const subscribeBody = z.object({
    endpoint: z.string().max(2048).superRefine((v, ctx) => {
      const problem = targetProblem(v, opts.allowPrivateTargets) ?? (opts.allowPrivateTargets || v.startsWith('https:') ? null : 'must be an https URL');
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
    expirationTime: z.number().nullable().optional(),
    keys: z.object({ p256dh: base64url('an uncompressed P-256 public key', 65), auth: base64url('the auth secret', 16) }).strict(),
    user_agent: z.string().max(255).optional(),
  }).strict().meta({
    examples: [{
      endpoint: 'https://fcm.googleapis.com/fcm/send/dXJp...', expirationTime: null,
      keys: { p256dh: `B${'A'.repeat(86)}`, auth: 'AAAAAAAAAAAAAAAAAAAAAA' }, user_agent: 'Firefox on Android',
    }],
  });

  const fcmBody = z.object({
    token: z.string().min(1).max(4096).regex(/^[\x21-\x7e]+$/, 'must be an FCM registration token'),
    platform: z.enum(['android', 'ios', 'web']).optional(),
  }).strict().meta({ examples: [{ token: 'fGx0...:APA91b...', platform: 'android' }] });
  const fcmEnabled = () => {
    if (!opts.fcm) throw errors.unavailable('FCM is not configured on this server (FCM_CREDENTIALS_FILE)');
  };

  return [
    defineRoute<z.infer<typeof fcmBody>>({
      method: 'post', path: '/push/fcm-tokens', tag: 'push', auth: 'user',
      summary: 'Save this app install\'s FCM registration token; the same token again updates it',
      body: fcmBody, success: { status: 201, also: [200], description: 'The token (200: it was saved before)', data: fcmTokenData },
      errors: [400, 401, 403, 503],
      async handler(ctx, { body }) {
        fcmEnabled();
        const max = opts.limits.fcmTokens;
        const { row, created } = await fcmTokensDb.upsert(ctx.state.repos, { token: body.token, platform: body.platform ?? null }, max)
          .catch(refusedOverLimit('fcm_tokens', max));
        envelope(ctx, { fcm_token: { id: row.id, platform: row.platform ?? null, created_at: row.createdAt.toISOString() } }, created ? 201 : 200);
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'delete', path: '/push/fcm-tokens/:id', tag: 'push', auth: 'user', summary: 'Stop pushing to an app install (sign-out)',
      params: idParams, success: { status: 200, description: 'Deleted', data: deleted }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        await fcmTokensDb.remove(ctx.state.repos, params.id);
        envelope(ctx, { deleted: true });
      },
    }),
    defineRoute({
      method: 'get', path: '/push/vapid-public-key', tag: 'push', auth: 'user', summary: 'The VAPID public key a browser subscribes with',
      success: { status: 200, description: 'The key', data: vapidKey }, errors: [401, 503],
      async handler(ctx) {
        envelope(ctx, { public_key: enabled().publicKey });
      },
    }),
    defineRoute<z.infer<typeof subscribeBody>>({
      method: 'post', path: '/push/subscriptions', tag: 'push', auth: 'user',
      summary: 'Save this browser\'s push subscription (its PushSubscription JSON); the same endpoint again updates it',
      body: subscribeBody, success: { status: 201, also: [200], description: 'The subscription (200: it was saved before)', data: pushSubscriptionData },
      errors: [400, 401, 403, 503],
      async handler(ctx, { body }) {
        enabled();
        const max = opts.limits.pushSubscriptions;
        const { row, created } = await subscriptionsDb.upsert(ctx.state.repos, {
          endpoint: body.endpoint, p256dh: body.keys.p256dh, auth: body.keys.auth, userAgent: body.user_agent ?? null,
        }, max).catch(refusedOverLimit('push_subscriptions', max));
        envelope(ctx, { subscription: presentSubscription(row) }, created ? 201 : 200);
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'delete', path: '/push/subscriptions/:id', tag: 'push', auth: 'user', summary: 'Stop pushing to a browser',
      params: idParams, success: { status: 200, description: 'Deleted', data: deleted }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        await subscriptionsDb.remove(ctx.state.repos, params.id);
        envelope(ctx, { deleted: true });
      },
    }),
  ];
}

export function presentSubscription(s: PushSubscription): z.output<typeof SubscriptionOut> {
  return { id: s.id, endpoint: s.endpoint, user_agent: s.userAgent ?? null, created_at: s.createdAt.toISOString() };
}
