// Uploaded files' metadata, per user, and the per-user storage quota.
import { StoredFile } from './entities.ts';
import { OwnedRepos } from './owned.ts';
import type { EntityManager } from '@mikro-orm/postgresql';
import { onEm, sql, dbOf } from './sql.ts';

/** Bytes the user's files take. */
export async function usedBytes(repos: OwnedRepos): Promise<number> {
  const row = await (await dbOf(repos.root)).one<{ used: string }>(
    sql`select coalesce(sum(size_bytes), 0)::text as used from files where user_id = ${repos.userId}`);
  return Number(row!.used);
}

/** A file to record; `taskId` only for a step artifact's (deleted with its run). */
export type NewFile = Omit<StoredFile, 'userId' | 'taskId'> & { taskId?: string | null };

/**
 * Records the user's file if it fits in `quotaBytes`, one upload per user at a time (so the
 * quota holds under concurrent uploads). `place` puts the bytes where the row says, inside the
 * transaction: a failure there leaves no row. `over`: the bytes already used, when it did not fit.
 */
export async function insertWithinQuota(
  repos: OwnedRepos, file: NewFile, quotaBytes: number, place: (tx: EntityManager) => Promise<unknown>,
): Promise<{ file: StoredFile } | { over: number }> {
  return repos.em.transactional(async (tx) => {
    await onEm(tx, sql`select pg_advisory_xact_lock(hashtextextended(${`files:${repos.userId}`}::text, 0))`);
    const [row] = await onEm<{ used: string }>(tx,
      sql`select coalesce(sum(size_bytes), 0)::text as used from files where user_id = ${repos.userId}`);
    const used = Number(row.used);
    if (used + file.sizeBytes > quotaBytes) return { over: used };
    await place(tx);
    return { file: new OwnedRepos(tx, repos.userId).create(StoredFile, file) };
  });
}

/** The user's files, newest first. */
export function page(repos: OwnedRepos, offset: number, limit: number) {
  return repos.findAndCount(StoredFile, {}, { orderBy: { createdAt: 'desc', id: 'desc' }, offset, limit });
}

export function get(repos: OwnedRepos, id: string): Promise<StoredFile> {
  return repos.get(StoredFile, id, 'file');
}

export async function remove(repos: OwnedRepos, file: StoredFile): Promise<void> {
  await repos.em.remove(file).flush();
}
