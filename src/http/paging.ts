import type { EntityName } from '@mikro-orm/core';
import { z } from 'zod';
import type { OwnedRepos } from '../db/owned.ts';
import { newestFirst } from '../db/pages.ts';
import { errors } from '../errors.ts';

/** `page` and `page_size` (default 20, max 100), as the contract lists them. */
export const pageQuery = z.object({
  page: z.coerce.number().int().min(1).max(1_000_000).default(1),
  page_size: z.coerce.number().int().min(1).max(100).default(20),
});

export function pageOf<T>(list: T[], total: number, q: { page: number; page_size: number }, nextCursor: string | null = null) {
  return { list, total, page: q.page, page_size: q.page_size, next_cursor: nextCursor };
}

/** Keyset cursor over (created_at desc, id desc): stable under inserts, unlike offsets. */
export interface Cursor {
  at: Date;
  id: string;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.at.toISOString(), c.id])).toString('base64url');
}

/** Parses a cursor from a query string; undefined when absent, null when malformed. */
export function decodeCursor(raw: string | undefined): Cursor | null | undefined {
  if (raw === undefined) return undefined;
  try {
    const [at, id] = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as [string, string];
    const date = new Date(at);
    if (Number.isNaN(date.getTime()) || typeof id !== 'string' || !/^[0-9a-f-]{36}$/i.test(id)) return null;
    // Only what encodeCursor writes: a forged year 0 or 275760 is out of PostgreSQL's range (a 500).
    if (date.toISOString() !== at || date.getUTCFullYear() < 1970 || date.getUTCFullYear() > 9999) return null;
    return { at: date, id };
  } catch {
    return null;
  }
}

export const cursorParam = z.string().max(200).optional();

/**
 * An ISO 8601 instant for time filters (`from`, `to`), within what PostgreSQL stores: year 0000,
 * or an offset that moves the instant out of years 1-9999, would be a database error (a 500).
 */
export const instantParam = z.iso.datetime({ offset: true }).refine((v) => {
  const year = new Date(v).getUTCFullYear();
  return year >= 1 && year <= 9999;
}, 'must be between years 0001 and 9999');

/**
 * One page of a user's rows, newest first: by `cursor` (keyset, stable under inserts) when
 * given, else by `page`. Answers the contract's list shape with `next_cursor`.
 */
export async function keysetPage<T extends { id: string; userId: string; createdAt: Date }, P>(
  repos: OwnedRepos,
  entity: EntityName<T>,
  where: Record<string, unknown>,
  query: { page: number; page_size: number; cursor?: string },
  present: (row: T) => P,
) {
  const cursor = decodeCursor(query.cursor);
  if (cursor === null) throw errors.invalid('invalid query', [{ path: 'cursor', message: 'malformed cursor' }]);
  const { rows, total } = await newestFirst(repos, entity, where, {
    after: cursor,
    limit: query.page_size + 1,
    // With a cursor, `page` is ignored: the cursor says where to go on.
    offset: cursor ? 0 : (query.page - 1) * query.page_size,
  });
  const page = rows.slice(0, query.page_size);
  const last = page[page.length - 1];
  const next = rows.length > query.page_size && last ? encodeCursor({ at: last.createdAt, id: last.id }) : null;
  return pageOf(page.map(present), total, query, next);
}
