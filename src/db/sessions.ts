// Login sessions and their refresh tokens (src/domain/sessions.ts holds the rules). A session
// is one refresh-token family; revoking it tells every API node (NOTIFY, delivered on commit).
import { SESSIONS_CHANNEL } from './channels.ts';
import type { UserScope } from './scope.ts';
import { sql, type Db, type Tx } from './sql.ts';

type Runner = Pick<Db, 'all'> | Tx;

export async function insertSession(db: Runner, scope: UserScope, sessionId: string, client: string | null): Promise<void> {
  await db.all(sql`insert into sessions (id, user_id, client) values (${sessionId}, ${scope.userId}, ${client})`);
}

/** A refresh token (by its hash) of the session, valid for `ttlS` seconds from now. */
export async function insertRefreshToken(db: Runner, sessionId: string, tokenHash: string, ttlS: number): Promise<void> {
  await db.all(sql`insert into refresh_tokens (id, session_id, token_hash, expires_at)
    values (${crypto.randomUUID()}, ${sessionId}, ${tokenHash}, now() + make_interval(secs => ${ttlS}))`);
}

export interface PresentedToken {
  id: string;
  session_id: string;
  user_id: string;
  used_at: Date | null;
  expired: boolean;
  revoked_at: Date | null;
}

/** The refresh token with this hash and its session, both locked until the transaction ends. */
export async function lockRefreshToken(tx: Tx, tokenHash: string): Promise<PresentedToken | undefined> {
  const [row] = await tx.all<PresentedToken & Record<string, unknown>>(sql`
    select r.id, r.session_id, s.user_id, r.used_at, r.expires_at < now() as expired, s.revoked_at
      from refresh_tokens r join sessions s on s.id = r.session_id
     where r.token_hash = ${tokenHash} for update of r, s`);
  return row;
}

export async function spendRefreshToken(tx: Tx, id: string): Promise<void> {
  await tx.all(sql`update refresh_tokens set used_at = now() where id = ${id}`);
}

/** Revokes a session and, in the same statement, tells every node (delivered on commit). */
export async function revoke(db: Runner, sessionId: string, reason: string): Promise<void> {
  await db.all(sql`with r as (update sessions set revoked_at = now(), revoked_reason = ${reason} where id = ${sessionId} and revoked_at is null returning id)
    select pg_notify(${SESSIONS_CHANNEL}, id::text) from r`);
}

/** Whether the user's session is open (not revoked). */
export async function isOpen(db: Db, scope: UserScope, sessionId: string): Promise<boolean> {
  const rows = await db.prepared(sql`select 1 as ok from sessions where id = ${sessionId} and user_id = ${scope.userId} and revoked_at is null`);
  return rows.length > 0;
}

/**
 * Revokes every open session of the user but `keep` (none when null), telling every node in the
 * same statement. The ids of the sessions revoked.
 */
export async function revokeAllOf(db: Runner, scope: UserScope, reason: string, keep: string | null): Promise<string[]> {
  const rows = await db.all<{ id: string }>(sql`with r as (update sessions set revoked_at = now(), revoked_reason = ${reason}
      where user_id = ${scope.userId} and revoked_at is null and id is distinct from ${keep}::uuid returning id)
    select id, pg_notify(${SESSIONS_CHANNEL}, id::text) from r`);
  return rows.map((r) => r.id);
}
