// Firebase Cloud Messaging, HTTP v1 API: a message per app install (its registration token),
// authorized with an OAuth 2 access token that google-auth-library gets for the service account
// (a signed JWT exchanged at the token URI, cached until it expires). The send endpoint and the
// token URI are settings, so a test (or an emulator) can stand in for Google.
import { readFileSync } from 'node:fs';
import { gaxios, JWT } from 'google-auth-library';
import type { Config } from '../config.ts';
import type { Notification } from '../db/entities.ts';
import type { Answer } from './outbound-http.ts';
import { notificationLinks } from './notification-links.ts';
import { pushPayload } from './web-push.ts';

const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
/** Where google-auth-library exchanges the service account's JWT; FCM_TOKEN_URI may send it elsewhere. */
const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';

export interface FcmSettings {
  projectId: string;
  clientEmail: string;
  privateKey: string;
  tokenUri: string;
  /** Base URL of the FCM API. */
  endpoint: string;
}

/** FCM's settings from the service account file (FCM_CREDENTIALS_FILE); null: FCM is off. */
export function fcmSettingsOf(config: Pick<Config, 'FCM_CREDENTIALS_FILE' | 'FCM_ENDPOINT' | 'FCM_TOKEN_URI'>): FcmSettings | null {
  if (!config.FCM_CREDENTIALS_FILE) return null;
  const account = JSON.parse(readFileSync(config.FCM_CREDENTIALS_FILE, 'utf8')) as Record<string, string>;
  for (const field of ['project_id', 'client_email', 'private_key']) {
    if (typeof account[field] !== 'string') throw new Error(`FCM_CREDENTIALS_FILE has no ${field}: is it a service account key?`);
  }
  return {
    projectId: account.project_id, clientEmail: account.client_email, privateKey: account.private_key,
    tokenUri: config.FCM_TOKEN_URI ?? account.token_uri ?? GOOGLE_TOKEN_URI, endpoint: config.FCM_ENDPOINT.replace(/\/$/, ''),
  };
}

/** FCM data values are strings. */
const strings = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));

/** The HTTP v1 message for one notification (or a quiet hours digest) to one app install. */
export function fcmMessage(token: string, n: Notification, digested: readonly Notification[]) {
  const p = pushPayload(n, digested);
  const urgent = n.kind.startsWith('approval.') || n.kind.endsWith('failed');
  return {
    message: {
      token,
      notification: { title: p.title, ...(p.body ? { body: p.body } : {}) },
      data: strings({ id: p.id, kind: p.kind, task_id: p.task_id, links: n.taskId && digested.length === 0 ? notificationLinks(n.taskId, n.kind) : null, digest: p.digest }),
      android: { priority: urgent ? 'HIGH' : 'NORMAL' },
    },
  };
}

export class FcmSender {
  private readonly client: JWT;
  private readonly url: string;

  constructor(s: FcmSettings) {
    const transporter = new gaxios.Gaxios();
    if (s.tokenUri !== GOOGLE_TOKEN_URI) {
      // google-auth-library has Google's token URI built in: its requests are pointed at ours.
      transporter.interceptors.request.add({
        resolved: async (opts) => {
          if (String(opts.url) === GOOGLE_TOKEN_URI) opts.url = new URL(s.tokenUri);
          return opts;
        },
      });
    }
    this.client = new JWT({ email: s.clientEmail, key: s.privateKey, scopes: [SCOPE], transporter });
    this.url = `${s.endpoint}/v1/projects/${encodeURIComponent(s.projectId)}/messages:send`;
  }

  /** Sends one message; resolves with FCM's status (any), rejects when no answer came. */
  async send(token: string, n: Notification, digested: readonly Notification[], timeoutMs: number): Promise<Answer> {
    const res = await this.client.request<unknown>({
      url: this.url, method: 'POST', data: fcmMessage(token, n, digested), timeout: timeoutMs,
      validateStatus: () => true, responseType: 'text', retry: false,
    });
    return { statusCode: res.status, text: typeof res.data === 'string' ? res.data.slice(0, 4096) : JSON.stringify(res.data ?? null).slice(0, 4096) };
  }
}

/** Whether FCM's answer says the token is no longer valid (the app was uninstalled or re-registered). */
export function isUnregistered(a: Answer): boolean {
  return a.statusCode === 404 || (a.statusCode === 400 && /UNREGISTERED|registration token/i.test(a.text));
}
