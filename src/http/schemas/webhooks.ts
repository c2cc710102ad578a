// Responses of /webhooks.
import { z } from 'zod';
import { DELIVERY_STATUSES, NOTIFICATION_CHANNELS, NOTIFICATION_KINDS } from '../../db/entities.ts';
import { EXAMPLE, instant, nullableInstant, pageOf, uuid } from './common.ts';

const endpointExampleId = '1f3b5d7f-9a1c-4e3a-8c5e-7a9c1e3a5c7e';
const notificationExampleId = '8a0c2e4a-6c8e-4a0c-9e4a-6c8e0a2c4e6a';

export const WebhookEndpoint = z.strictObject({
  id: uuid,
  url: z.string(),
  kinds: z.array(z.enum(NOTIFICATION_KINDS)).describe('The kinds it gets; empty: every kind'),
  enabled: z.boolean(),
  description: z.string().nullable(),
  created_at: instant,
  updated_at: instant,
}).meta({
  id: 'WebhookEndpoint',
  examples: [{
    id: endpointExampleId, url: 'https://example.com/hooks/jarvis', kinds: ['run.failed', 'schedule.run_failed'], enabled: true,
    description: 'Failures to the on-call channel', created_at: EXAMPLE.at, updated_at: EXAMPLE.at,
  }],
});

export const webhookData = z.strictObject({ webhook: WebhookEndpoint });
export const webhookCreated = z.strictObject({
  webhook: WebhookEndpoint,
  secret: z.string().describe('The signing secret ("whsec_..."), shown only here: verify each request\'s webhook-signature with it (Standard Webhooks)'),
});
export const webhookPage = pageOf(WebhookEndpoint);

export const Delivery = z.strictObject({
  id: uuid,
  notification_id: uuid.describe('Also the webhook-id header of every request of this delivery'),
  channel: z.enum(NOTIFICATION_CHANNELS),
  webhook_id: uuid.nullable().describe('The webhook endpoint (channel webhook)'),
  push_subscription_id: uuid.nullable().describe('The browser\'s push subscription (channel web_push); its deliveries go with it when it is deleted'),
  fcm_token_id: uuid.nullable().describe('The app install\'s FCM token (channel fcm); its deliveries go with it when it is deleted'),
  status: z.enum(DELIVERY_STATUSES).describe('pending: being delivered, retried, waiting for a permit of its account or held for quiet hours; failed: retries spent, or the target refused or gone; digested: sent in another delivery\'s digest'),
  not_before: nullableInstant.describe('Held for quiet hours until then'),
  attempts: z.int().min(0).describe('Requests made (every round, redeliveries included); a delivery waiting for one of its account\'s permits (DELIVERY_MAX_IN_FLIGHT_PER_ACCOUNT) makes none'),
  redeliveries: z.int().min(0),
  last_status_code: z.int().nullable(),
  last_error: z.string().nullable(),
  created_at: instant,
  finished_at: nullableInstant,
}).meta({
  id: 'WebhookDelivery',
  examples: [{
    id: '2b4d6f8a-0c2e-4a4c-8e6a-0c2e4a6c8e0a', notification_id: notificationExampleId, channel: 'webhook', webhook_id: endpointExampleId,
    push_subscription_id: null, fcm_token_id: null, status: 'failed', not_before: null,
    attempts: 12, redeliveries: 0, last_status_code: 503, last_error: 'HTTP 503: busy', created_at: EXAMPLE.at, finished_at: EXAMPLE.at,
  }],
});
export const deliveryData = z.strictObject({ delivery: Delivery });
export const deliveryPage = pageOf(Delivery);
