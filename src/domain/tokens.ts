// Access tokens (JWT, HS256) for people; opaque random tokens for devices and refresh.
import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';

export interface AccessClaims {
  userId: string;
  /** The login session the token belongs to (revoked by logout or refresh-token reuse). */
  sessionId: string;
  jti: string;
  /** Expiry, epoch seconds. */
  exp: number;
}

export class TokenError extends Error {}

/** Verified tokens kept at once: a token presented again skips the HMAC (~170 us with jose). */
const VERIFIED_MAX = 10_000;

export class AccessTokens {
  private readonly key: Uint8Array;
  private readonly ttlS: number;
  // token -> its claims, oldest first. The same bytes verify the same way until `exp`, so only
  // the expiry is checked again; revocation is the session check's job (Sessions.isOpen).
  private readonly verified = new Map<string, AccessClaims>();

  constructor(secret: string, ttlS: number) {
    this.key = new TextEncoder().encode(secret);
    this.ttlS = ttlS;
  }

  get ttl(): number {
    return this.ttlS;
  }

  async issue(userId: string, sessionId: string, ttlS = this.ttlS): Promise<string> {
    return new SignJWT({ typ: 'access', sid: sessionId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuedAt()
      .setJti(randomBytes(12).toString('base64url'))
      .setIssuer('jarvis')
      .setAudience('jarvis-api')
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlS)
      .sign(this.key);
  }

  /** Verifies signature, algorithm (HS256 only: never `none`), issuer, audience and expiry. */
  async verify(token: string): Promise<AccessClaims> {
    const known = this.verified.get(token);
    if (known) {
      if (known.exp * 1000 > Date.now()) return known;
      this.verified.delete(token);
      throw new TokenError('token expired');
    }
    const claims = Object.freeze(await this.verifySignature(token));
    if (this.verified.size >= VERIFIED_MAX) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(token, claims);
    return claims;
  }

  private async verifySignature(token: string): Promise<AccessClaims> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        issuer: 'jarvis',
        audience: 'jarvis-api',
      });
      if (payload.typ !== 'access' || typeof payload.sub !== 'string' || typeof payload.jti !== 'string' ||
        typeof payload.sid !== 'string' || typeof payload.exp !== 'number') {
        throw new TokenError('not an access token');
      }
      return { userId: payload.sub, sessionId: payload.sid, jti: payload.jti, exp: payload.exp };
    } catch (err) {
      if (err instanceof TokenError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new TokenError('token expired');
      throw new TokenError('token invalid');
    }
  }
}

/** A new opaque token with a readable prefix (`dev_`, `rt_`) and its SHA-256 for storage. */
export function newOpaqueToken(prefix: string): { token: string; hash: string } {
  const token = `${prefix}${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** JWTs have three dot-separated parts; device tokens start with `dev_`. */
export function looksLikeJwt(token: string): boolean {
  return token.split('.').length === 3;
}
