// Login sessions: access tokens (JWT carrying the session id) and rotating refresh tokens.
// Each refresh spends its token and issues the next one in the same session; presenting a
// spent token again means it was stolen or replayed, so the whole session is revoked.
import type { EntityManager } from '@mikro-orm/postgresql';
import { errors } from '../http/errors.ts';
import { hashToken, newOpaqueToken, type AccessTokens } from './tokens.ts';

export interface TokenPair {
  access_token: string;
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
  token_type: 'Bearer';
}

export class Sessions {
  private readonly tokens: AccessTokens;
  private readonly refreshTtlS: number;

  constructor(tokens: AccessTokens, refreshTtlS: number) {
    this.tokens = tokens;
    this.refreshTtlS = refreshTtlS;
  }

  /** A new session for a user who just proved who they are. */
  async open(em: EntityManager, userId: string, client: string | null): Promise<TokenPair> {
    const sessionId = crypto.randomUUID();
    await em.execute('insert into sessions (id, user_id, client) values (?, ?, ?)', [sessionId, userId, client], 'run');
    return this.issue(em, userId, sessionId);
  }

  private async issue(em: EntityManager, userId: string, sessionId: string): Promise<TokenPair> {
    const { token, hash } = newOpaqueToken('rt_');
    await em.execute(
      `insert into refresh_tokens (id, session_id, token_hash, expires_at) values (?, ?, ?, now() + (? || ' seconds')::interval)`,
      [crypto.randomUUID(), sessionId, hash, String(this.refreshTtlS)],
      'run',
    );
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
    return em.transactional(async (tx) => {
      const rows = await tx.execute<{ id: string; session_id: string; user_id: string; used_at: Date | null; expired: boolean; revoked_at: Date | null }[]>(
        `select r.id, r.session_id, s.user_id, r.used_at, r.expires_at < now() as expired, s.revoked_at
           from refresh_tokens r join sessions s on s.id = r.session_id
          where r.token_hash = ? for update of r, s`,
        [hashToken(refreshToken)],
      );
      const row = rows[0];
      if (!row) throw errors.unauthenticated('refresh token invalid');
      if (row.revoked_at) throw errors.unauthenticated('session revoked');
      if (row.used_at) {
        await tx.execute(`update sessions set revoked_at = now(), revoked_reason = 'refresh_token_reuse' where id = ?`, [row.session_id], 'run');
        // Commit the revocation, then refuse: the caller gets a 401 either way.
        return null;
      }
      if (row.expired) throw errors.unauthenticated('refresh token expired');
      await tx.execute('update refresh_tokens set used_at = now() where id = ?', [row.id], 'run');
      return this.issue(tx, row.user_id, row.session_id);
    }).then((pair) => {
      if (!pair) throw errors.unauthenticated('refresh token already used: the session is revoked');
      return pair;
    });
  }

  async revoke(em: EntityManager, sessionId: string, reason: string): Promise<void> {
    await em.execute(`update sessions set revoked_at = now(), revoked_reason = ? where id = ? and revoked_at is null`, [reason, sessionId], 'run');
  }

  /** Whether an access token's session is still open (its user exists, it is not revoked). */
  async isOpen(em: EntityManager, userId: string, sessionId: string): Promise<boolean> {
    const rows = await em.execute<{ ok: number }[]>(
      'select 1 as ok from sessions where id = ? and user_id = ? and revoked_at is null',
      [sessionId, userId],
    );
    return rows.length > 0;
  }
}
