// One webhook request, as the Standard Webhooks spec has it (https://www.standardwebhooks.com):
// the body `{type, timestamp, data}`, and the headers webhook-id (the notification's id, the
// same on every retry and redelivery, so a receiver drops duplicates by it), webhook-timestamp
// and webhook-signature, signed by the maintained `standardwebhooks` package.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Webhook } from 'standardwebhooks';
import type { Notification } from '../db/entities.ts';
import { checkLiteralTarget, guardedLookup } from './webhook-targets.ts';

/** The receiver's answer is read up to this much (only for the delivery log's error text). */
const MAX_ANSWER_BYTES = 4096;

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

export interface WebhookAnswer {
  statusCode: number;
  /** The start of the receiver's answer, for the delivery log. */
  text: string;
}

/**
 * POSTs `n` to `url`, signed with `secret`; resolves with the receiver's status (any), rejects
 * when no answer came (refused target, DNS, connection, timeout).
 */
export function sendWebhook(opts: { url: string; secret: string; notification: Notification; timeoutMs: number; allowPrivate: boolean; at?: Date }): Promise<WebhookAnswer> {
  const url = new URL(opts.url);
  checkLiteralTarget(url, opts.allowPrivate);
  const body = JSON.stringify(webhookPayload(opts.notification));
  const signed = new Webhook(opts.secret).sign(opts.notification.id, opts.at ?? new Date(), body);
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'jarvis-orchestrator-webhooks',
    'webhook-id': opts.notification.id,
    'webhook-timestamp': String(Math.floor((opts.at ?? new Date()).getTime() / 1000)),
    'webhook-signature': signed,
    'content-length': String(Buffer.byteLength(body)),
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method: 'POST', headers, lookup: guardedLookup(opts.allowPrivate) as never, timeout: opts.timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_ANSWER_BYTES) chunks.push(c);
        size += c.length;
      });
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8').slice(0, MAX_ANSWER_BYTES) }));
      res.on('error', reject);
    });
    // A receiver that never answers is a failed attempt, not a stuck activity.
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
