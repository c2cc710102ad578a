// Who is opening a socket: a device (by its device token) or a monitor (by a user access token
// whose login session is still open). Anything else is refused before the upgrade.
import type { Orm } from '../db/orm.ts';
import { deviceForToken } from '../domain/devices.ts';
import type { Sessions } from '../domain/sessions.ts';
import { looksLikeJwt, type AccessTokens } from '../domain/tokens.ts';

export type Identity =
  | { role: 'device'; deviceId: string; userId: string }
  /** `sessionId` is the login session the access token belongs to. */
  | { role: 'monitor'; userId: string; sessionId: string; exp: number };

export async function identify(orm: Orm, tokens: AccessTokens, loginSessions: Sessions, token: string): Promise<Identity | null> {
  const em = orm.em.fork();
  if (token.startsWith('dev_')) {
    const device = await deviceForToken(em, token);
    return device ? { role: 'device', deviceId: device.id, userId: device.userId } : null;
  }
  if (!looksLikeJwt(token)) return null;
  let claims: Awaited<ReturnType<AccessTokens['verify']>>;
  try {
    claims = await tokens.verify(token);
  } catch {
    return null;
  }
  // Outside the catch: PostgreSQL away is no bad token (the upgrade answers 503, not 401, and
  // a client told 401 stops trying).
  const { userId, sessionId, exp } = claims;
  return (await loginSessions.isOpen(em, userId, sessionId)) ? { role: 'monitor', userId, sessionId, exp } : null;
}
