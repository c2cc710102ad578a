import { z } from 'zod';

/** `page` and `page_size` (default 20, max 100), as the contract lists them. */
export const pageQuery = z.object({
  page: z.coerce.number().int().min(1).max(1_000_000).default(1),
  page_size: z.coerce.number().int().min(1).max(100).default(20),
});

export function pageOf<T>(list: T[], total: number, q: { page: number; page_size: number }, nextCursor: string | null = null) {
  return { list, total, page: q.page, page_size: q.page_size, next_cursor: nextCursor };
}
