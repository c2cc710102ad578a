// Settings come from the environment, validated once at boot. Everything else reads `Config`.
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { z } from 'zod';

const DEV_JWT_SECRET = 'jarvis-dev-secret-change-me-in-production-0123456789';

const bool = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1');

/** An origin as browsers send it: a lower-case scheme and host, an optional port, nothing after. */
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/;

const schema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    HOST: z.string().default('127.0.0.1'),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    /** URL people use to reach this API node; printed at start, used in links. */
    PUBLIC_URL: z.url().optional(),
    DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/jarvis'),
    /** When set, use that Temporal server and spawn none. */
    TEMPORAL_ADDRESS: z.string().min(1).optional(),
    TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
    TEMPORAL_UI_URL: z.url().default('http://127.0.0.1:8233'),
    TEMPORAL_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),
    TEMPORAL_PORT: z.coerce.number().int().min(1).max(65535).default(7233),
    /** Task queue of the task workers (workflows + persistence activities). */
    TASK_QUEUE: z.string().min(1).default('task-runs'),
    /** This API node's id; its device-step activities run on `device-steps.<NODE_ID>`. */
    NODE_ID: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(),
    JWT_SECRET: z.string().min(32, 'JWT_SECRET must be at least 32 characters').optional(),
    ACCESS_TOKEN_TTL_S: z.coerce.number().int().min(30).default(900),
    REFRESH_TOKEN_TTL_S: z.coerce.number().int().min(60).default(30 * 24 * 3600),
    WS_HEARTBEAT_MS: z.coerce.number().int().min(1000).default(30_000),
    /** A monitor with more unsent bytes than this loses live-only frames (progress, logs). */
    WS_LIVE_DROP_BYTES: z.coerce.number().int().min(1024).default(256 * 1024),
    /** A monitor with more unsent bytes than this when a durable event is due is closed with 1013. */
    WS_OVERLOAD_CLOSE_BYTES: z.coerce.number().int().min(1024).default(4 * 1024 * 1024),
    /** Per-account limits: what one user may hold (403 code 1003 over them; runs: 429 code 4029). */
    ACCOUNT_MAX_DEVICES: z.coerce.number().int().min(1).default(20),
    ACCOUNT_MAX_WORKFLOWS: z.coerce.number().int().min(1).default(500),
    ACCOUNT_MAX_SCHEDULES: z.coerce.number().int().min(1).default(50),
    /** Unfinished (pending, running, paused) runs per user: each holds a workflow and a lane place. */
    ACCOUNT_MAX_UNFINISHED_RUNS: z.coerce.number().int().min(1).default(500),
    /** Notification targets per user: each notification is one delivery workflow per target. */
    ACCOUNT_MAX_WEBHOOKS: z.coerce.number().int().min(1).default(20),
    ACCOUNT_MAX_PUSH_SUBSCRIPTIONS: z.coerce.number().int().min(1).default(20),
    ACCOUNT_MAX_FCM_TOKENS: z.coerce.number().int().min(1).default(20),
    /** Open monitor sockets per user on one API node (more: the upgrade is refused with 429). */
    WS_MAX_MONITORS_PER_USER: z.coerce.number().int().min(1).default(20),
    /** Task subscriptions per monitor socket (more: `error` code 4029). */
    WS_MAX_SUBSCRIPTIONS: z.coerce.number().int().min(1).default(100),
    /** How long an API node trusts a login session it found open (revocations reach it at once through NOTIFY); 0: ask PostgreSQL every time. */
    SESSION_CACHE_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(5000),
    /** How long a run waits for an offline device before it fails. */
    DEVICE_OFFLINE_TIMEOUT_MS: z.coerce.number().int().min(1000).default(24 * 3600 * 1000),
    /** How long an account's deletion waits for its cancelled runs to end before it terminates them. */
    ACCOUNT_DELETE_RUNS_END_MS: z.coerce.number().int().min(0).max(120_000).default(15_000),
    /** How long before an approval times out its approval.expiring reminder is written (at most half the approval's window). */
    APPROVAL_REMINDER_LEAD_MS: z.coerce.number().int().min(1000).default(15 * 60 * 1000),
    /** How often each API node looks for due approval reminders (how late one may be); 0: this node does not. */
    APPROVAL_REMINDER_SWEEP_MS: z.coerce.number().int().min(0).max(600_000).default(15_000),
    /** Web Push (VAPID) keys, base64url, as `web-push generate-vapid-keys` prints them; unset: generated once into DATA_DIR (not in production: Web Push off). */
    VAPID_PUBLIC_KEY: z.string().min(1).optional(),
    VAPID_PRIVATE_KEY: z.string().min(1).optional(),
    /** The contact push services may use (mailto: or https:). */
    VAPID_SUBJECT: z.string().regex(/^(mailto:|https:\/\/)/, 'must be a mailto: or https: URL').default('mailto:admin@localhost'),
    /** A Firebase service account key (JSON file) for FCM pushes to the phone apps; unset: FCM off. */
    FCM_CREDENTIALS_FILE: z.string().min(1).optional(),
    /** Base URL of the FCM HTTP v1 API. */
    FCM_ENDPOINT: z.url().default('https://fcm.googleapis.com'),
    /** Where the service account's JWT is exchanged for an access token (default: the key file's token_uri). */
    FCM_TOKEN_URI: z.url().optional(),
    /** Each API node dispatches a new notification to its deliveries (webhooks, pushes) when its outbox notice arrives, and sweeps the outbox this often for what a lost notice left and held pushes come due; 0: this node does not dispatch. */
    NOTIFY_DISPATCH_MS: z.coerce.number().int().min(0).max(60_000).default(1000),
    /** Let webhooks reach loopback, private and link-local addresses (SSRF protection off: only for a receiver on a trusted network, and tests). */
    WEBHOOK_ALLOW_PRIVATE_TARGETS: bool.default(false),
    /** How long one webhook request may take before it counts as a failed attempt. */
    WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
    /** Attempts per delivery (Temporal's retries, with exponential backoff) before it is failed. */
    DELIVERY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(12),
    /** The first retry's delay; each next one doubles, up to DELIVERY_RETRY_MAX_MS. */
    DELIVERY_RETRY_INITIAL_MS: z.coerce.number().int().min(10).default(10_000),
    DELIVERY_RETRY_MAX_MS: z.coerce.number().int().min(10).default(3_600_000),
    /** Delivery attempts one account may have in flight at once, across every worker: its receivers that hang hold no more of the deliveries worker's slots than this. */
    DELIVERY_MAX_IN_FLIGHT_PER_ACCOUNT: z.coerce.number().int().min(1).default(8),
    /** Deliveries each task worker runs at once (its deliveries worker's workflow task and local activity slots); keep it well above DELIVERY_MAX_IN_FLIGHT_PER_ACCOUNT. */
    DELIVERY_WORKER_SLOTS: z.coerce.number().int().min(2).default(100),
    MIGRATE_ON_BOOT: bool.default(false),
    /** Requests per minute per client IP on /api/v1 (token bucket, per API node). */
    RATE_LIMIT_IP_PER_MIN: z.coerce.number().int().min(1).default(600),
    /** Requests per minute per signed-in user on authenticated routes (per API node). */
    RATE_LIMIT_USER_PER_MIN: z.coerce.number().int().min(1).default(1200),
    /** POST /auth/login and /auth/register per client IP per minute (brute force; per API node). */
    RATE_LIMIT_AUTH_PER_MIN: z.coerce.number().int().min(1).default(20),
    /** Behind a load balancer: take the client IP from the last X-Forwarded-For hop. */
    TRUST_PROXY: bool.default(false),
    /** When set, GET /metrics requires `Authorization: Bearer <METRICS_TOKEN>`. */
    METRICS_TOKEN: z.string().min(16, 'METRICS_TOKEN must be at least 16 characters').optional(),
    /**
     * host:port where the Temporal SDK serves its worker metrics (Prometheus); GET /metrics of
     * an API node appends them. Unset: not collected.
     */
    TEMPORAL_METRICS_ADDRESS: z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:9464')
      .refine((a) => Number(a.slice(a.lastIndexOf(':') + 1)) <= 65535, 'port must be at most 65535').optional(),
    /** OTLP/HTTP collector (http or https, e.g. http://127.0.0.1:4318): traces go to its /v1/traces. Unset: no tracing. */
    OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
    /** `service.name` of the exported spans. */
    OTEL_SERVICE_NAME: z.string().min(1).default('jarvis-orchestrator'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Where uploaded files live (`files/<user_id>/<id>` under it); resolved to an absolute path. */
    DATA_DIR: z.string().min(1).default(resolve(import.meta.dirname, '..', '.data')).transform((d) => resolve(d)),
    /** Largest accepted upload, in bytes (413 over it). */
    FILE_MAX_BYTES: z.coerce.number().int().min(1).default(10 * 1024 * 1024),
    /** Per-user storage quota: sum of the sizes of a user's files, in bytes (413 over it). */
    USER_QUOTA_BYTES: z.coerce.number().int().min(1).default(1024 * 1024 * 1024),
    /** Step artifacts (screenshots, files devices attach) are deleted this many days after they came. */
    ARTIFACT_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
    /**
     * Web origins allowed to call the REST API from a browser or webview (comma list, exact
     * `scheme://host[:port]`, e.g. `tauri://localhost,https://app.example.com`). Empty: none.
     */
    CORS_ORIGINS: z.string().default('').transform((v, ctx) => {
      const list = v.split(',').map((o) => o.trim()).filter(Boolean);
      for (const o of list) {
        if (!ORIGIN.test(o)) {
          ctx.addIssue({ code: 'custom', message: `"${o}" is not an origin: write scheme://host[:port] in lower case, without a path or trailing slash (no wildcards)` });
        }
      }
      return list;
    }),
  })
  .superRefine((env, ctx) => {
    if (env.WS_LIVE_DROP_BYTES >= env.WS_OVERLOAD_CLOSE_BYTES) {
      ctx.addIssue({ code: 'custom', path: ['WS_LIVE_DROP_BYTES'], message: 'must be below WS_OVERLOAD_CLOSE_BYTES (live frames are dropped before a monitor is closed)' });
    }
    if (!env.JWT_SECRET && (env.NODE_ENV === 'production' || !isLoopback(env.HOST))) {
      // The development secret is in the source: anyone could mint tokens for a node that
      // others can reach. It is accepted only where no one else can connect.
      ctx.addIssue({
        code: 'custom', path: ['JWT_SECRET'],
        message: env.NODE_ENV === 'production'
          ? 'JWT_SECRET is required in production'
          : `JWT_SECRET is required when HOST (${env.HOST}) is not a loopback address; the development secret is public`,
      });
    }
  });

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

export type Config = Omit<z.infer<typeof schema>, 'JWT_SECRET' | 'NODE_ID'> & {
  JWT_SECRET: string;
  NODE_ID: string;
};

export class ConfigError extends Error {}

/** Parses settings; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid settings in the environment:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  return {
    ...c,
    JWT_SECRET: c.JWT_SECRET ?? DEV_JWT_SECRET,
    NODE_ID: c.NODE_ID ?? `node-${randomUUID().slice(0, 8)}`,
  };
}

/** The per-account limits the settings give (ACCOUNT_MAX_*). */
export function accountLimitsOf(config: Config) {
  return {
    devices: config.ACCOUNT_MAX_DEVICES,
    workflows: config.ACCOUNT_MAX_WORKFLOWS,
    schedules: config.ACCOUNT_MAX_SCHEDULES,
    unfinishedRuns: config.ACCOUNT_MAX_UNFINISHED_RUNS,
    webhooks: config.ACCOUNT_MAX_WEBHOOKS,
    pushSubscriptions: config.ACCOUNT_MAX_PUSH_SUBSCRIPTIONS,
    fcmTokens: config.ACCOUNT_MAX_FCM_TOKENS,
  };
}

export function publicUrl(config: Config, port = config.PORT): string {
  return config.PUBLIC_URL ?? `http://${config.HOST}:${port}`;
}
