// Web Push (RFC 8030/8291/8292) with the `web-push` package: it encrypts the payload for the
// browser's keys (aes128gcm) and signs the VAPID header; the request itself goes through the
// same SSRF guard as webhooks. VAPID keys come from the settings; for a local start without them
// a pair is generated once and kept under DATA_DIR, so browsers' subscriptions stay valid.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import webpush from 'web-push';
import type { Config } from '../config.ts';
import type { Notification, PushSubscription } from '../db/entities.ts';
import { notificationLinks } from './notification-links.ts';
import { guardedPost, type Answer } from './outbound-http.ts';

export interface VapidKeys {
  publicKey: string;
  privateKey: string;
  subject: string;
}

/** How long a push service keeps a push for an offline browser. */
const TTL_S = 24 * 3600;

/**
 * The VAPID keys: from the settings when set; else (not in production) generated once into
 * DATA_DIR/vapid-keys.json. Null: Web Push is off (production without keys).
 */
export function vapidKeysOf(config: Pick<Config, 'VAPID_PUBLIC_KEY' | 'VAPID_PRIVATE_KEY' | 'VAPID_SUBJECT' | 'NODE_ENV' | 'DATA_DIR'>): VapidKeys | null {
  if (config.VAPID_PUBLIC_KEY && config.VAPID_PRIVATE_KEY) {
    return { publicKey: config.VAPID_PUBLIC_KEY, privateKey: config.VAPID_PRIVATE_KEY, subject: config.VAPID_SUBJECT };
  }
  if (config.NODE_ENV === 'production') return null;
  const file = join(config.DATA_DIR, 'vapid-keys.json');
  if (!existsSync(file)) {
    mkdirSync(config.DATA_DIR, { recursive: true });
    // `wx`: two processes starting at once keep the first pair written.
    try {
      writeFileSync(file, JSON.stringify(webpush.generateVAPIDKeys()), { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
    }
  }
  const keys = JSON.parse(readFileSync(file, 'utf8')) as { publicKey: string; privateKey: string };
  return { ...keys, subject: config.VAPID_SUBJECT };
}

/** What the browser's service worker gets: the notification, or a digest of those held in quiet hours. */
export function pushPayload(n: Notification, digested: readonly Notification[]) {
  const links = n.taskId ? notificationLinks(n.taskId, n.kind) : null;
  if (digested.length === 0) {
    return { id: n.id, kind: n.kind, title: n.title, body: n.body ?? null, task_id: n.taskId ?? null, links, digest: null };
  }
  const all = [n, ...digested];
  return {
    id: n.id, kind: n.kind, title: `${all.length} notifications during quiet hours`, body: all.map((x) => x.title).join('\n'),
    task_id: null, links: null, digest: all.map((x) => ({ id: x.id, kind: x.kind, title: x.title, task_id: x.taskId ?? null })),
  };
}

export function sendWebPush(opts: {
  subscription: PushSubscription; notification: Notification; digested: readonly Notification[]; vapid: VapidKeys;
  timeoutMs: number; allowPrivate: boolean;
}): Promise<Answer> {
  const { subscription: s, notification: n } = opts;
  const details = webpush.generateRequestDetails(
    { endpoint: s.endpoint, keys: { p256dh: s.p256dh, auth: s.auth } },
    JSON.stringify(pushPayload(n, opts.digested)),
    {
      vapidDetails: opts.vapid, TTL: TTL_S, contentEncoding: 'aes128gcm',
      urgency: n.kind.startsWith('approval.') || n.kind.endsWith('failed') ? 'high' : 'normal',
      // Pushes of one notification replace each other in the push service (a retry, a redelivery).
      topic: n.id.replace(/-/g, '').slice(0, 32),
    },
  );
  return guardedPost(details.endpoint, details.headers as Record<string, string>, details.body, opts);
}
