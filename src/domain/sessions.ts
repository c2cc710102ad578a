// Login sessions: access tokens (JWT carrying the session id) and rotating refresh tokens.
// Each refresh spends its token and issues the next one in the same session; presenting a
// spent token again means it was stolen or replayed, so the whole session is revoked.
import type { EntityManager } from '@mikro-orm/postgresql';
import { errors } from '../errors.ts';
import * as sessionsDb from '../db/sessions.ts';
import { dbOf, type Tx } from '../db/sql.ts';
import { hashToken, newOpaqueToken, type AccessTokens } from './tokens.ts';

export interface TokenPair {
  access_token: string;
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
  token_type: 'Bearer';
}

/** What the session cache needs from the PostgreSQL bus (pg-bus.ts). */
export interface RevocationFeed {
  readonly listening: boolean;
  readonly listenEpoch: number;
  onSessionRevoked(fn: (sessionId: string) => void): () => void;
}

/**
 * Sessions this node found open, trusted for `ttlMs`, so that an authenticated request does not
 * read `sessions` each time. Safe across nodes: every revocation sends a NOTIFY in its own
 * statement, and an entry counts only while the LISTEN connection that would have received it
 * has stayed up since the entry was read (the TTL bounds what a silently dead one could miss).
 */
export class SessionCache {
  private readonly open = new Map<string, { userId: string; until: number; epoch: number }>();
  private readonly feed: RevocationFeed;
  private readonly ttlMs: number;
  private readonly max: number;
  /** Bumped by every revocation: a read that overlapped one is not cached. */
  private revocations = 0;

  constructor(feed: RevocationFeed, ttlMs: number, max = 10_000) {
    this.feed = feed;
    this.ttlMs = ttlMs;
    this.max = max;
    feed.onSessionRevoked((sessionId) => this.forget(sessionId));
  }

  has(userId: string, sessionId: string): boolean {
    const e = this.open.get(sessionId);
    if (!e) return false;
    if (e.userId === userId && e.until > Date.now() && e.epoch === this.feed.listenEpoch && this.feed.listening) return true;
    this.open.delete(sessionId);
    return false;
  }

  /** Taken before reading the database; store() keeps the answer only if it is still current. */
  ticket(): { revocations: number; epoch: number; listening: boolean } {
    return { revocations: this.revocations, epoch: this.feed.listenEpoch, listening: this.feed.listening };
  }

  store(userId: string, sessionId: string, t: ReturnType<SessionCache['ticket']>): void {
    if (!this.ttlMs || !t.listening || t.revocations !== this.revocations || t.epoch !== this.feed.listenEpoch) return;
    this.open.delete(sessionId);
    if (this.open.size >= this.max) this.open.delete(this.open.keys().next().value!);
    this.open.set(sessionId, { userId, until: Date.now() + this.ttlMs, epoch: t.epoch });
  }

  forget(sessionId: string): void {
    this.revocations++;
    this.open.delete(sessionId);
  }
}

export class Sessions {
  private readonly tokens: AccessTokens;
  private readonly refreshTtlS: number;
  private readonly cache?: SessionCache;

  constructor(tokens: AccessTokens, refreshTtlS: number, cache?: SessionCache) {
    this.tokens = tokens;
    this.refreshTtlS = refreshTtlS;
    this.cache = cache;
  }

  /** A new session for a user who just proved who they are. */
  async open(em: EntityManager, userId: string, client: string | null): Promise<TokenPair> {
    const sessionId = crypto.randomUUID();
    const db = await dbOf(em);
    await sessionsDb.insertSession(db, { userId }, sessionId, client);
    return this.issue(db, userId, sessionId);
  }

  private async issue(db: Pick<Tx, 'all'>, userId: string, sessionId: string): Promise<TokenPair> {
    const { token, hash } = newOpaqueToken('rt_');
    await sessionsDb.insertRefreshToken(db, sessionId, hash, this.refreshTtlS);
    return {
      access_token: await this.tokens.issue(userId, sessionId),
      expires_in: this.tokens.ttl,
      refresh_token: token,
      refresh_expires_in: this.refreshTtlS,
      token_type: 'Bearer',
    };
  }

  /** Spends a refresh token for a new pair; reuse of a spent one revokes its session. */
  async refresh(em: EntityManager, refreshToken: string): Promise<TokenPair> {
    if (!refreshToken.startsWith('rt_') || refreshToken.length > 200) throw errors.unauthenticated('refresh token invalid');
    const db = await dbOf(em);
    const outcome = await db.transaction(async (tx): Promise<TokenPair | { revoked: string }> => {
      await tx.run(['begin']);
      const row = await sessionsDb.lockRefreshToken(tx, hashToken(refreshToken));
      if (!row) throw errors.unauthenticated('refresh token invalid');
      if (row.revoked_at) throw errors.unauthenticated('session revoked');
      if (row.used_at) {
        // Commit the revocation, then refuse: the caller gets a 401 either way.
        await sessionsDb.revoke(tx, row.session_id, 'refresh_token_reuse');
        await tx.run(['commit']);
        return { revoked: row.session_id };
      }
      if (row.expired) throw errors.unauthenticated('refresh token expired');
      await sessionsDb.spendRefreshToken(tx, row.id);
      const pair = await this.issue(tx, row.user_id, row.session_id);
      await tx.run(['commit']);
      return pair;
    });
    if ('revoked' in outcome) {
      this.cache?.forget(outcome.revoked);
      throw errors.unauthenticated('refresh token already used: the session is revoked');
    }
    return outcome;
  }

  async revoke(em: EntityManager, sessionId: string, reason: string): Promise<void> {
    await sessionsDb.revoke(await dbOf(em), sessionId, reason);
    this.cache?.forget(sessionId);
  }

  /** Revokes every session of the user but `keep`; the ids revoked. */
  async revokeAllOf(em: EntityManager, userId: string, reason: string, keep: string | null): Promise<string[]> {
    const ids = await sessionsDb.revokeAllOf(await dbOf(em), { userId }, reason, keep);
    this.forget(ids);
    return ids;
  }

  /** Drops revoked sessions from this node's cache at once (other nodes hear of them by NOTIFY). */
  forget(sessionIds: readonly string[]): void {
    for (const id of sessionIds) this.cache?.forget(id);
  }

  /** Whether an access token's session is still open (its user exists, it is not revoked). */
  async isOpen(em: EntityManager | (() => EntityManager), userId: string, sessionId: string): Promise<boolean> {
    if (this.cache?.has(userId, sessionId)) return true;
    const ticket = this.cache?.ticket();
    const open = await sessionsDb.isOpen(await dbOf(typeof em === 'function' ? em() : em), { userId }, sessionId);
    if (open && ticket) this.cache!.store(userId, sessionId, ticket);
    return open;
  }
}
