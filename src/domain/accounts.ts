// People: registration, login, password changes. Passwords are argon2id hashes.
import { hash, verify } from '@node-rs/argon2';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { User } from '../db/entities.ts';
import type { OwnedRepos } from '../db/owned.ts';
import * as usersDb from '../db/users.ts';
import { AppError, ErrorCode, errors } from '../errors.ts';
import type { Sessions } from './sessions.ts';

// A real hash to compare against when the email is unknown, so timing does not reveal accounts.
const DUMMY_HASH = '$argon2id$v=19$m=19456,t=2,p=1$MTzPuFJW+kQieUthNOlYZg$uV00WuMw7Sc6N+ni2pKZhYHv+M1t7uZZWlYI8J8pzgQ';

export class Accounts {
  private readonly sessions: Sessions;

  constructor(sessions: Sessions) {
    this.sessions = sessions;
  }

  async register(em: EntityManager, input: { email: string; password: string; name?: string }): Promise<User> {
    const email = input.email.trim().toLowerCase();
    if (await usersDb.emailTaken(em, email)) throw new AppError(409, ErrorCode.InvalidParams, 'email already registered', { errors: [{ path: 'email', message: 'already registered' }] });
    const passwordHash = await hash(input.password);
    try {
      return await usersDb.insert(em, { id: crypto.randomUUID(), email, passwordHash, name: input.name ?? null });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') {
        throw new AppError(409, ErrorCode.InvalidParams, 'email already registered', { errors: [{ path: 'email', message: 'already registered' }] });
      }
      throw err;
    }
  }

  async login(em: EntityManager, input: { email: string; password: string }, client: string | null) {
    const user = await usersDb.byEmail(em, input.email.trim().toLowerCase());
    const ok = await verify(user?.passwordHash ?? DUMMY_HASH, input.password);
    if (!user || !ok) throw errors.unauthenticated('email or password is wrong');
    return { user, tokens: await this.sessions.open(em, user.id, client) };
  }

  /** Throws a 400 naming `field` unless `password` is the account's. */
  async checkPassword(repos: OwnedRepos, password: string, field: string): Promise<User> {
    const user = await usersDb.me(repos);
    if (!(await verify(user.passwordHash, password))) {
      throw errors.invalid('the password is wrong', [{ path: field, message: 'wrong password' }]);
    }
    return user;
  }

  /**
   * A new password. Every other session of the account ends (a changed password is often a
   * suspected theft); `sessionId`, the one asking, stays open. The number of sessions ended.
   */
  async changePassword(repos: OwnedRepos, sessionId: string, current: string, next: string): Promise<number> {
    const user = await this.checkPassword(repos, current, 'current_password');
    user.passwordHash = await hash(next);
    await usersDb.save(repos);
    return (await this.sessions.revokeAllOf(repos.em, repos.userId, 'password changed', sessionId)).length;
  }
}
