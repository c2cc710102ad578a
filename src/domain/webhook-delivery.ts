// One webhook request, as the Standard Webhooks spec has it (https://www.standardwebhooks.com):
// the body `{type, timestamp, data}`, and the headers webhook-id (the notification's id, the
// same on every retry and redelivery, so a receiver drops duplicates by it), webhook-timestamp
// and webhook-signature, signed by the maintained `standardwebhooks` package.
import { Webhook } from 'standardwebhooks';
import type { Notification } from '../db/entities.ts';
import { guardedPost, type Answer } from './outbound-http.ts';

/** A new endpoint's secret: "whsec_" and 32 random bytes in base64, as the spec writes them. */
export function newWebhookSecret(): string {
  return `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64')}`;
}

/** The body a receiver gets for `n`. */
export function webhookPayload(n: Notification) {
  return {
    type: n.kind,
    timestamp: n.createdAt.toISOString(),
    data: {
      id: n.id, kind: n.kind, title: n.title, body: n.body ?? null,
      task_id: n.taskId ?? null, workflow_id: n.workflowId ?? null, workflow_name: n.workflowName ?? null,
      device_id: n.deviceId ?? null, device_name: n.deviceName ?? null,
      expires_at: n.expiresAt ? n.expiresAt.toISOString() : null, created_at: n.createdAt.toISOString(),
    },
  };
}

/** POSTs `n` to `url`, signed with `secret` (see guardedPost for what it resolves with). */
export function sendWebhook(opts: { url: string; secret: string; notification: Notification; timeoutMs: number; allowPrivate: boolean }): Promise<Answer> {
  const at = new Date();
  const body = JSON.stringify(webhookPayload(opts.notification));
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'jarvis-orchestrator-webhooks',
    'webhook-id': opts.notification.id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(opts.secret).sign(opts.notification.id, at, body),
  };
  return guardedPost(opts.url, headers, body, opts);
}
