// Token bucket math with an injected clock (no sleeps), memory bounds, and the Koa middleware's
// headers and 429s.
import { describe, expect, it } from '@jest/globals';
import type { Context } from 'koa';
import { AppError, ErrorCode } from '../../src/errors.ts';
import { clientKey, RateLimits, TokenBuckets } from '../../src/http/rate-limit.ts';

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t, advance: (ms: number) => { c.t += ms; } };
  return c;
}

describe('TokenBuckets', () => {
  it('allows the limit as a burst, then refuses with Retry-After until a token is back', () => {
    const c = clock();
    const b = new TokenBuckets({ limitPerMin: 60, now: c.now }); // one token a second
    for (let i = 0; i < 60; i++) {
      const r = b.take('a');
      expect(r).toEqual({ allowed: true, limit: 60, remaining: 59 - i, retryAfterS: 0 });
    }
    expect(b.take('a')).toEqual({ allowed: false, limit: 60, remaining: 0, retryAfterS: 1 });
    c.advance(999);
    expect(b.take('a').allowed).toBe(false);
    c.advance(1);
    expect(b.take('a')).toEqual({ allowed: true, limit: 60, remaining: 0, retryAfterS: 0 });
    expect(b.take('a').allowed).toBe(false);
  });

  it('computes Retry-After from the refill rate, rounded up, never below 1', () => {
    const c = clock();
    const b = new TokenBuckets({ limitPerMin: 3, now: c.now }); // a token every 20 s
    for (let i = 0; i < 3; i++) expect(b.take('ip').allowed).toBe(true);
    expect(b.take('ip').retryAfterS).toBe(20);
    c.advance(5_500);
    expect(b.take('ip').retryAfterS).toBe(15); // 14.5 s left -> 15
    c.advance(14_499);
    expect(b.take('ip').retryAfterS).toBe(1); // 1 ms left -> 1, never 0
    c.advance(1);
    expect(b.take('ip').allowed).toBe(true);

    const fast = new TokenBuckets({ limitPerMin: 6000, now: c.now }); // 100 a second
    for (let i = 0; i < 6000; i++) fast.take('x');
    expect(fast.take('x').retryAfterS).toBe(1);
  });

  it('refills continuously up to the limit and no further', () => {
    const c = clock();
    const b = new TokenBuckets({ limitPerMin: 120, now: c.now }); // 2 a second
    for (let i = 0; i < 120; i++) b.take('k');
    c.advance(10_000); // +20
    expect(b.take('k').remaining).toBe(19);
    c.advance(3_600_000);
    expect(b.take('k').remaining).toBe(119);
  });

  it('keeps one bucket per key', () => {
    const c = clock();
    const b = new TokenBuckets({ limitPerMin: 2, now: c.now });
    expect(b.take('a').allowed).toBe(true);
    expect(b.take('a').allowed).toBe(true);
    expect(b.take('a').allowed).toBe(false);
    expect(b.take('b')).toMatchObject({ allowed: true, remaining: 1 });
  });

  it('drops buckets idle long enough to be full again (a fresh bucket is the same)', () => {
    const c = clock();
    const b = new TokenBuckets({ limitPerMin: 10, now: c.now });
    for (let i = 0; i < 1000; i++) b.take(`ip-${i}`);
    expect(b.size).toBe(1000);
    c.advance(30_000);
    b.take('recent');
    expect(b.size).toBe(1001);
    c.advance(30_000); // the first 1000 have been idle a minute, 'recent' half a minute
    b.take('other');
    expect(b.size).toBe(2);
    // Dropping lost nothing: a returning key starts full, as its old bucket would have been.
    expect(b.take('ip-0').remaining).toBe(9);
  });

  it('never holds more than maxEntries keys: the least recently used goes first', () => {
    const c = clock();
    const b = new TokenBuckets({ limitPerMin: 5, maxEntries: 3, now: c.now });
    b.take('a');
    b.take('b');
    b.take('c');
    b.take('a'); // a is now the most recent
    b.take('d'); // evicts b
    expect(b.size).toBe(3);
    expect(b.take('a').remaining).toBe(2); // kept: third take
    expect(b.take('b').remaining).toBe(4); // evicted: starts over
  });

  it('is safe when the clock does not move or goes backwards', () => {
    const c = clock();
    const b = new TokenBuckets({ limitPerMin: 2, now: c.now });
    b.take('k');
    c.advance(-5_000);
    expect(b.take('k')).toMatchObject({ allowed: true, remaining: 0 });
    expect(b.take('k').allowed).toBe(false);
  });
});

describe('clientKey', () => {
  it('folds IPv4-mapped IPv6 into IPv4 and names an absent address', () => {
    expect(clientKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('2001:db8::1')).toBe('2001:db8::1');
    expect(clientKey(undefined)).toBe('unknown');
  });
});

/** Just enough of a Koa context for the middleware. */
function fakeCtx(method: string, path: string, ip: string, userId?: string) {
  const headers: Record<string, string> = {};
  const ctx = {
    method, path, ip,
    state: { userId },
    response: { get: (k: string) => headers[k.toLowerCase()] }, // Koa 3: undefined when unset
    set: (k: string, v: string) => { headers[k.toLowerCase()] = v; },
  };
  return { ctx: ctx as unknown as Context, headers };
}

describe('RateLimits', () => {
  const settings = { RATE_LIMIT_IP_PER_MIN: 5, RATE_LIMIT_USER_PER_MIN: 3, RATE_LIMIT_AUTH_PER_MIN: 2 };

  async function run(limits: RateLimits, method: string, path: string, ip: string) {
    const { ctx, headers } = fakeCtx(method, path, ip);
    let reached = false;
    try {
      await limits.middleware()(ctx, async () => { reached = true; });
      return { reached, headers, error: undefined };
    } catch (err) {
      return { reached, headers, error: err as AppError };
    }
  }

  it('limits /api/v1 per IP with headers on every response, and leaves other paths alone', async () => {
    const c = clock();
    const limits = new RateLimits(settings, '/api/v1', { now: c.now });
    for (let i = 0; i < 5; i++) {
      const r = await run(limits, 'GET', '/api/v1/tasks', '10.0.0.1');
      expect(r.reached).toBe(true);
      expect(r.headers).toEqual({ 'ratelimit-limit': '5', 'ratelimit-remaining': String(4 - i) });
    }
    const refused = await run(limits, 'GET', '/api/v1/workflows', '10.0.0.1');
    expect(refused.reached).toBe(false);
    expect(refused.error).toBeInstanceOf(AppError);
    expect(refused.error).toMatchObject({ status: 429, code: ErrorCode.RateLimited, headers: { 'Retry-After': '12' } });
    expect(refused.headers['ratelimit-remaining']).toBe('0');
    expect((await run(limits, 'GET', '/api/v1/tasks', '10.0.0.2')).reached).toBe(true);
    const health = await run(limits, 'GET', '/healthz', '10.0.0.1');
    expect(health).toMatchObject({ reached: true, headers: {} });
    expect((await run(limits, 'GET', '/api/v1x', '10.0.0.1')).reached).toBe(true);
  });

  it('compares the prefix without regard to case, as the router matches', async () => {
    const c = clock();
    const limits = new RateLimits(settings, '/api/v1', { now: c.now });
    const spellings = ['/api/v1/tasks', '/API/V1/tasks', '/Api/v1/tasks/', '/api/V1', '/api/v1/auth/login/'];
    for (const [i, path] of spellings.entries()) {
      expect((await run(limits, 'GET', path, '10.0.0.1')).headers['ratelimit-remaining']).toBe(String(4 - i));
    }
    expect((await run(limits, 'GET', '/API/v1/workflows', '10.0.0.1')).error).toMatchObject({ status: 429 });
  });

  it('spends the route bucket that a route names, shared by login and register, per IP', () => {
    const c = clock();
    const limits = new RateLimits(settings, '/api/v1', { now: c.now });
    const take = (ip: string) => {
      const { ctx, headers } = fakeCtx('POST', '/whatever/the/router/matched', ip);
      try {
        limits.checkRoute(ctx, 'auth');
        return { headers, error: undefined };
      } catch (err) {
        return { headers, error: err as AppError };
      }
    };
    expect(take('10.0.0.1')).toEqual({ headers: { 'ratelimit-limit': '2', 'ratelimit-remaining': '1' }, error: undefined });
    expect(take('10.0.0.1').error).toBeUndefined();
    const refused = take('10.0.0.1');
    expect(refused.error).toMatchObject({ status: 429, code: ErrorCode.RateLimited, headers: { 'Retry-After': '30' } });
    expect(refused.headers).toEqual({ 'ratelimit-limit': '2', 'ratelimit-remaining': '0' });
    expect(take('10.0.0.2').error).toBeUndefined();
    c.advance(30_000);
    expect(take('10.0.0.1').error).toBeUndefined();
  });

  it('limits per user after authentication, whatever the IP', () => {
    const c = clock();
    const limits = new RateLimits(settings, '/api/v1', { now: c.now });
    for (let i = 0; i < 3; i++) limits.checkUser(fakeCtx('GET', '/api/v1/tasks', `10.0.0.${i}`, 'user-1').ctx);
    const { ctx, headers } = fakeCtx('GET', '/api/v1/tasks', '10.9.9.9', 'user-1');
    expect(() => limits.checkUser(ctx)).toThrow(AppError);
    expect(headers).toEqual({ 'ratelimit-limit': '3', 'ratelimit-remaining': '0' });
    expect(() => limits.checkUser(fakeCtx('GET', '/api/v1/tasks', '10.9.9.9', 'user-2').ctx)).not.toThrow();
  });
});
