// Pages of a user's rows, newest first, for the list endpoints (src/http/paging.ts presents them).
import type { EntityName, FilterQuery } from '@mikro-orm/core';
import type { OwnedRepos } from './owned.ts';

/** A position in (created_at desc, id desc) order. */
export interface After {
  at: Date;
  id: string;
}

/**
 * The user's rows of `entity` matching `where`, newest first: after `after` when given (a keyset,
 * stable under inserts), else from `offset`; and how many match in all.
 */
export async function newestFirst<T extends { id: string; userId: string; createdAt: Date }>(
  repos: OwnedRepos,
  entity: EntityName<T>,
  where: Record<string, unknown>,
  page: { after?: After; offset: number; limit: number },
): Promise<{ rows: T[]; total: number }> {
  const total = await repos.count(entity, where as FilterQuery<T>);
  const after = page.after && { $or: [{ createdAt: { $lt: page.after.at } }, { createdAt: page.after.at, id: { $lt: page.after.id } }] };
  const rows = await repos.find(entity, (after ? { ...where, ...after } : where) as FilterQuery<T>, {
    orderBy: { createdAt: 'desc', id: 'desc' } as never,
    limit: page.limit,
    offset: page.offset,
  });
  return { rows, total };
}
