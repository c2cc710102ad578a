// Building blocks of the response schemas. Objects are strict: a presenter that adds a field
// without adding it here fails the response check (src/http/route.ts), so the document cannot
// fall behind the code.
import { z } from 'zod';

export const uuid = z.uuid();
/** An instant as the presenters write it (Date.toISOString()). */
export const instant = z.iso.datetime();
export const nullableInstant = instant.nullable();
/** Free JSON the user or a device supplied (parameters, outputs, details). */
export const json = z.unknown().describe('Any JSON value, null included');
export const jsonObject = z.record(z.string(), z.unknown());

export const deleted = z.strictObject({ deleted: z.literal(true) });

/** The contract's list shape: `page`/`page_size` paging, `next_cursor` where keyset paging applies. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.strictObject({
    list: z.array(item),
    total: z.int().min(0),
    page: z.int().min(1),
    page_size: z.int().min(1),
    next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page (lists that page by cursor); null at the end'),
  });
}

/** The same example ids everywhere, so examples of related resources line up. */
export const EXAMPLE = {
  userId: '0b8e4a53-8c1e-4f4e-9a53-3c2b7a1d2e10',
  deviceId: '6f1d2c3b-4a5e-4d7f-8a9b-0c1d2e3f4a5b',
  workflowId: '2a4c6e8f-1b3d-4f5a-8c7e-9d0b1a2c3e4f',
  versionId: '9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b',
  taskId: '3c5e7a9b-2d4f-4a6c-8e0b-1d3f5a7c9e2b',
  scheduleId: '7b9d1f3a-5c7e-4b9d-8f1a-3c5e7b9d1f3a',
  logId: '4d6f8a0c-2e4a-4c6e-9a0c-2e4a6c8e0a2c',
  fileId: '5e7a9c1e-3a5c-4e7a-9c1e-3a5c7e9a1c3e',
  at: '2026-03-02T09:15:00.000Z',
} as const;
