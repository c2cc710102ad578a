// Access tokens: what verify accepts and refuses, including a token it has verified before.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { SignJWT } from 'jose';
import { AccessTokens, TokenError } from '../../src/domain/tokens.ts';

const SECRET = 'test-secret-test-secret-test-secret-0123';
const user = '00000000-0000-4000-8000-000000000001';
const session = '00000000-0000-4000-8000-000000000002';

afterEach(() => { jest.restoreAllMocks(); });

describe('AccessTokens.verify', () => {
  it('returns the claims, the same on a second look', async () => {
    const tokens = new AccessTokens(SECRET, 900);
    const token = await tokens.issue(user, session);
    const first = await tokens.verify(token);
    expect(first).toMatchObject({ userId: user, sessionId: session });
    expect(await tokens.verify(token)).toEqual(first);
  });

  it('refuses a token it verified before once it has expired', async () => {
    const tokens = new AccessTokens(SECRET, 900);
    const token = await tokens.issue(user, session, 60);
    await tokens.verify(token);
    const later = Date.now() + 61_000;
    jest.spyOn(Date, 'now').mockReturnValue(later);
    await expect(tokens.verify(token)).rejects.toThrow(new TokenError('token expired'));
  });

  it('refuses another key, alg none and a tampered payload, verified copy or not', async () => {
    const tokens = new AccessTokens(SECRET, 900);
    const good = await tokens.issue(user, session);
    await tokens.verify(good);
    const other = await new AccessTokens('another-secret-another-secret-0123456', 900).issue(user, session);
    await expect(tokens.verify(other)).rejects.toThrow(TokenError);
    const [h, p] = good.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
    await expect(tokens.verify(none)).rejects.toThrow(TokenError);
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')}.${good.split('.')[2]}`;
    await expect(tokens.verify(tampered)).rejects.toThrow(TokenError);
    const refresh = await new SignJWT({ typ: 'refresh', sid: session })
      .setProtectedHeader({ alg: 'HS256' }).setSubject(user).setJti('x').setIssuer('jarvis').setAudience('jarvis-api')
      .setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
    await expect(tokens.verify(refresh)).rejects.toThrow('not an access token');
  });
});
