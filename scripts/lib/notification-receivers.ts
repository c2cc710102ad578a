// Receivers of our notifications on 127.0.0.1, for the tests (deliveries.test.ts) and the bench
// (F7): a webhook endpoint that verifies each request the way a receiver does, with the
// standardwebhooks library, and a Web Push service that checks the VAPID signature and decrypts
// each payload with the browser's keys (http_ece, the RFC 8291 reference). Both keep what they
// got per path, with its arrival time.
import { createECDH, createPublicKey, randomBytes, randomUUID, verify } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import ece from 'http_ece';
import { Webhook } from 'standardwebhooks';

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  /** What the standardwebhooks library made of it with the endpoint's secret (null: refused). */
  verified: { type: string; data: Record<string, unknown> } | null;
}

/** A webhook receiver on 127.0.0.1: answers `statuses` (after `delays` ms) and keeps what it got per path. */
export class WebhookReceiver {
  readonly got = new Map<string, Received[]>();
  readonly secrets = new Map<string, string>();
  readonly statuses = new Map<string, number>();
  readonly delays = new Map<string, number>();
  private server!: Server;
  url = '';

  async start() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const path = req.url ?? '/';
        let verified: Received['verified'] = null;
        try {
          verified = new Webhook(this.secrets.get(path) ?? '').verify(body, req.headers as Record<string, string>) as Received['verified'];
        } catch {
          verified = null;
        }
        this.got.set(path, [...(this.got.get(path) ?? []), { headers: req.headers, body, verified, at: Date.now() }]);
        const status = this.statuses.get(path) ?? 204;
        setTimeout(() => {
          res.statusCode = status;
          res.end(status >= 300 ? 'busy' : undefined);
        }, this.delays.get(path) ?? 0);
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop() {
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

export interface Browser {
  ecdh: ReturnType<typeof createECDH>;
  auth: Buffer;
  path: string;
}

export interface Push {
  headers: IncomingHttpHeaders;
  payload: Record<string, any>;
  jwt: { aud: string; sub: string; exp: number } | null;
  /** When it arrived (epoch ms). */
  at: number;
}

/** A push service: keeps each push decrypted with its browser's keys, answers `statuses` (201 by default). */
export class PushService {
  readonly browsers = new Map<string, Browser>();
  readonly got = new Map<string, Push[]>();
  readonly statuses = new Map<string, number>();
  private server!: Server;
  url = '';

  /** `vapidPublicKey`: the application server's key (VAPID_PUBLIC_KEY) its signatures must verify with. */
  private readonly vapidPublicKey: string;
  constructor(vapidPublicKey: string) {
    this.vapidPublicKey = vapidPublicKey;
  }

  async start() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        const b = this.browsers.get(path);
        let payload: Record<string, any> = {};
        try {
          payload = b ? JSON.parse(ece.decrypt(Buffer.concat(chunks), { version: 'aes128gcm', privateKey: b.ecdh, authSecret: b.auth }).toString('utf8')) : {};
        } catch {
          payload = { undecryptable: true };
        }
        this.got.set(path, [...(this.got.get(path) ?? []), { headers: req.headers, payload, jwt: vapidClaims(String(req.headers.authorization ?? ''), this.vapidPublicKey), at: Date.now() }]);
        res.statusCode = this.statuses.get(path) ?? 201;
        res.end();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A browser's subscription to this service, as PushSubscription.toJSON() gives it. */
  subscribe(): { json: { endpoint: string; keys: { p256dh: string; auth: string } }; path: string } {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const path = `/push/${randomUUID()}`;
    const auth = randomBytes(16);
    this.browsers.set(path, { ecdh, auth, path });
    return { path, json: { endpoint: `${this.url}${path}`, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } } };
  }

  stop() {
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** The claims of a `vapid t=..., k=...` header when its ES256 signature verifies with the server's public key; else null. */
function vapidClaims(header: string, publicKey: string) {
  const m = /^vapid t=([^,]+),\s*k=(.+)$/.exec(header);
  if (!m || m[2] !== publicKey) return null;
  const [h, p, s] = m[1].split('.');
  const raw = Buffer.from(publicKey, 'base64url');
  const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33).toString('base64url') }, format: 'jwk' });
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
  return ok ? JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) : null;
}
