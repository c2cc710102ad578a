// Rate limits: in-process token buckets, per client IP on every /api/v1 route, per user on the
// authenticated routes, and a stricter per-IP bucket on POST /auth/login and /auth/register
// (password guessing, mass sign-ups).
//
// Trade-off (docs/operations.md): the buckets live in this API node's memory, not in Redis or
// PostgreSQL. With N nodes behind a load balancer a client can get up to N times a limit, and a
// restart forgets the buckets. In exchange a limit check costs no network round trip and no
// shared store can fail or slow every request. Set the limits per node accordingly.
//
// A bucket holds at most `limit` tokens (the per-minute limit is also the burst) and refills at
// limit/60 tokens per second; each request takes one token. Memory stays bounded: a bucket idle
// long enough to be full again is equal to no bucket and is dropped, and past `maxEntries` the
// least recently used one goes.
import type { Context, Next } from 'koa';
import { errors } from '../errors.ts';

export interface TakeResult {
  allowed: boolean;
  /** The bucket's limit per minute (RateLimit-Limit). */
  limit: number;
  /** Whole tokens left after this request (RateLimit-Remaining). */
  remaining: number;
  /** When refused: whole seconds until a token is back (Retry-After, >= 1); 0 when allowed. */
  retryAfterS: number;
}

export interface BucketOptions {
  /** Requests per minute, and the burst size. */
  limitPerMin: number;
  /** Most keys kept at once (default 100 000). */
  maxEntries?: number;
  /** Milliseconds, monotonic; injectable for tests. */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

const MINUTE_MS = 60_000;

export class TokenBuckets {
  readonly limit: number;
  private readonly perMs: number;
  private readonly refillMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  // In order of last use (a take moves its key to the end): idle buckets are at the front.
  private readonly buckets = new Map<string, Bucket>();

  constructor(opts: BucketOptions) {
    if (!(opts.limitPerMin >= 1)) throw new Error('limitPerMin must be >= 1');
    this.limit = opts.limitPerMin;
    this.perMs = opts.limitPerMin / MINUTE_MS;
    this.refillMs = MINUTE_MS; // an empty bucket is full again after a minute
    this.maxEntries = Math.max(1, opts.maxEntries ?? 100_000);
    this.now = opts.now ?? (() => performance.now());
  }

  /** Keys currently held (for tests and diagnostics). */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes one token from `key`'s bucket if it has one. */
  take(key: string): TakeResult {
    const now = this.now();
    this.sweep(now);
    const b = this.buckets.get(key);
    let tokens = this.limit;
    if (b) {
      tokens = Math.min(this.limit, b.tokens + Math.max(0, now - b.at) * this.perMs);
      this.buckets.delete(key);
    }
    const allowed = tokens >= 1;
    if (allowed) tokens -= 1;
    this.buckets.set(key, { tokens, at: now });
    if (this.buckets.size > this.maxEntries) this.buckets.delete(this.buckets.keys().next().value as string);
    return {
      allowed,
      limit: this.limit,
      remaining: Math.floor(tokens),
      retryAfterS: allowed ? 0 : Math.max(1, Math.ceil((1 - tokens) / this.perMs / 1000)),
    };
  }

  /** Drops the buckets that have been idle long enough to be full (the oldest are first). */
  private sweep(now: number): void {
    for (const [key, b] of this.buckets) {
      if (now - b.at < this.refillMs) return;
      this.buckets.delete(key);
    }
  }
}

export interface RateLimitSettings {
  RATE_LIMIT_IP_PER_MIN: number;
  RATE_LIMIT_USER_PER_MIN: number;
  RATE_LIMIT_AUTH_PER_MIN: number;
}

/** `::ffff:10.0.0.1` and `10.0.0.1` are one client. */
export function clientKey(ip: string | undefined): string {
  if (!ip) return 'unknown';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/**
 * Which bucket a route spends from besides the per-IP one: `auth` for the routes that cost a
 * password hash (login, register). Named on the route itself, so the limit holds for every path
 * the router matches to it (any letter case, a trailing slash), not for one spelling of it.
 */
export type RouteLimit = 'auth';

export class RateLimits {
  readonly ip: TokenBuckets;
  readonly user: TokenBuckets;
  readonly auth: TokenBuckets;
  private readonly prefix: string;

  constructor(settings: RateLimitSettings, prefix: string, opts: Omit<BucketOptions, 'limitPerMin'> = {}) {
    this.ip = new TokenBuckets({ ...opts, limitPerMin: settings.RATE_LIMIT_IP_PER_MIN });
    this.user = new TokenBuckets({ ...opts, limitPerMin: settings.RATE_LIMIT_USER_PER_MIN });
    this.auth = new TokenBuckets({ ...opts, limitPerMin: settings.RATE_LIMIT_AUTH_PER_MIN });
    this.prefix = prefix.toLowerCase();
  }

  /**
   * Koa middleware (before the body is read and before routing): the per-IP bucket on `prefix`.
   * The API router matches paths case-insensitively, so the prefix is compared the same way;
   * otherwise `/API/V1/...` would reach every route unlimited.
   */
  middleware() {
    return async (ctx: Context, next: Next) => {
      const path = ctx.path.toLowerCase();
      if (path === this.prefix || path.startsWith(`${this.prefix}/`)) apply(ctx, this.ip.take(clientKey(ctx.ip)));
      await next();
    };
  }

  /** The route's own bucket, once the router has matched it (before its body is validated). */
  checkRoute(ctx: Context, limit: RouteLimit): void {
    if (limit === 'auth') apply(ctx, this.auth.take(clientKey(ctx.ip)));
  }

  /** After authentication (ctx.state.userId is set): the per-user bucket. */
  checkUser(ctx: Context): void {
    apply(ctx, this.user.take(ctx.state.userId));
  }
}

/** Headers of the bucket closest to empty; a refused take throws 429 (code 4029, Retry-After). */
function apply(ctx: Context, r: TakeResult): void {
  const shown = ctx.response.get('RateLimit-Remaining'); // undefined until set (Koa 3)
  if (!r.allowed || !shown || r.remaining < Number(shown)) {
    ctx.set('RateLimit-Limit', String(r.limit));
    ctx.set('RateLimit-Remaining', String(r.remaining));
  }
  if (!r.allowed) throw errors.rateLimited(r.retryAfterS);
}
