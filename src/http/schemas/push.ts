// Responses of /push.
import { z } from 'zod';
import { EXAMPLE, instant, uuid } from './common.ts';

export const vapidKey = z.strictObject({
  public_key: z.string().describe('The VAPID public key (base64url): pass it as applicationServerKey to pushManager.subscribe()'),
});

export const PushSubscription = z.strictObject({
  id: uuid,
  endpoint: z.string(),
  user_agent: z.string().nullable(),
  created_at: instant,
}).meta({
  id: 'PushSubscription',
  examples: [{
    id: '3c5e7a9b-1d3f-4a5c-8e7a-9b1d3f5a7c9e', endpoint: 'https://fcm.googleapis.com/fcm/send/dXJp...', user_agent: 'Firefox on Android',
    created_at: EXAMPLE.at,
  }],
});
export const pushSubscriptionData = z.strictObject({ subscription: PushSubscription });

export const FcmToken = z.strictObject({
  id: uuid,
  platform: z.string().nullable(),
  created_at: instant,
}).meta({ id: 'FcmToken', examples: [{ id: '4d6f8a0c-2e4a-4c6e-8a0c-2e4a6c8e0a2d', platform: 'android', created_at: EXAMPLE.at }] });
export const fcmTokenData = z.strictObject({ fcm_token: FcmToken });
