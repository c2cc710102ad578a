// People's accounts. Emails are stored lower-cased (unique whatever their case).
import type { EntityManager } from '@mikro-orm/postgresql';
import { User } from './entities.ts';
import type { OwnedRepos } from './owned.ts';

export function byEmail(em: EntityManager, email: string): Promise<User | null> {
  return em.findOne(User, { email });
}

export async function emailTaken(em: EntityManager, email: string): Promise<boolean> {
  return (await em.count(User, { email })) > 0;
}

/** A new account, written at once (a duplicate email fails with 23505). */
export async function insert(em: EntityManager, user: Pick<User, 'id' | 'email' | 'passwordHash' | 'name'>): Promise<User> {
  const row = em.create(User, user);
  await em.flush();
  return row;
}

/** The scope's own account. */
export function me(repos: OwnedRepos): Promise<User> {
  return repos.em.findOneOrFail(User, { id: repos.userId });
}

/** Writes the changes made to the account read through `repos`. */
export async function save(repos: OwnedRepos): Promise<void> {
  await repos.em.flush();
}
