// Step artifacts: what devices attached to the steps of a user's runs. Their bytes are files of
// the user's (files + file_chunks), recorded under the same per-user lock and quota as uploads.
import { Readable } from 'node:stream';
import type { EntityManager } from '@mikro-orm/postgresql';
import { errors } from '../errors.ts';
import { StepArtifact, StoredFile } from './entities.ts';
import type { FileStore } from './file-store.ts';
import type { NewFile } from './files.ts';
import { OwnedRepos } from './owned.ts';
import { onEm, sql } from './sql.ts';

export interface NewArtifactFile {
  file: NewFile;
  bytes: Buffer;
}

export type NewArtifact = Omit<StepArtifact, 'userId' | 'fileId' | 'thumbnailFileId' | 'createdAt'>;

/**
 * Records an artifact and its files (the content, and its thumbnail when there is one) if they
 * fit in the user's `quotaBytes`, bytes and rows in one transaction. `over`: the bytes already
 * used, when they did not fit.
 */
export async function insertWithinQuota(
  repos: OwnedRepos, store: FileStore, artifact: NewArtifact, content: NewArtifactFile, thumbnail: NewArtifactFile | null, quotaBytes: number,
): Promise<{ artifact: StepArtifact } | { over: number }> {
  return repos.em.transactional(async (tx) => {
    // The uploads' lock: an artifact and an upload of the same user never both take the last bytes.
    await onEm(tx, sql`select pg_advisory_xact_lock(hashtextextended(${`files:${repos.userId}`}::text, 0))`);
    const [row] = await onEm<{ used: string }>(tx,
      sql`select coalesce(sum(size_bytes), 0)::text as used from files where user_id = ${repos.userId}`);
    const used = Number(row.used);
    const adding = content.file.sizeBytes + (thumbnail?.file.sizeBytes ?? 0);
    if (used + adding > quotaBytes) return { over: used };
    const scoped = new OwnedRepos(tx, repos.userId);
    for (const f of thumbnail ? [content, thumbnail] : [content]) {
      await store.put(tx, f.file.storageKey, Readable.from([f.bytes]));
      scoped.create(StoredFile, f.file);
    }
    // The files first: the entities declare no relation, so the flush would not order them.
    await tx.flush();
    const created = scoped.create(StepArtifact, {
      ...artifact, fileId: content.file.id, thumbnailFileId: thumbnail?.file.id ?? null, createdAt: new Date(),
    });
    return { artifact: created };
  });
}

/** The artifacts of the user's task, in the order they came. */
export function listOfTask(repos: OwnedRepos, taskId: string): Promise<StepArtifact[]> {
  return repos.find(StepArtifact, { taskId }, { orderBy: { createdAt: 'asc', id: 'asc' } });
}

/** One artifact of the user's task (404 when it is not the user's, or not that task's). */
export async function getOfTask(repos: OwnedRepos, taskId: string, id: string): Promise<StepArtifact> {
  const a = await repos.get(StepArtifact, id, 'artifact');
  if (a.taskId !== taskId) throw errors.notFound('artifact');
  return a;
}

/**
 * The artifacts stored for one step key of a task, whichever API node stored them, with their
 * contents' rows (for a step's answer after the device moved to another node; the run's own
 * dispatch path, not a user's request).
 */
export async function ofStepKey(em: EntityManager, taskId: string, stepKey: string): Promise<{ artifact: StepArtifact; content: StoredFile }[]> {
  const artifacts = await em.fork().find(StepArtifact, { taskId, stepKey }, { orderBy: { createdAt: 'asc', id: 'asc' } });
  if (artifacts.length === 0) return [];
  const files = new Map((await em.fork().find(StoredFile, { id: { $in: artifacts.map((a) => a.fileId) } })).map((f) => [f.id, f]));
  return artifacts.flatMap((artifact) => {
    const content = files.get(artifact.fileId);
    return content ? [{ artifact, content }] : [];
  });
}

/** The user's files with these ids (an artifact list's contents), by id. */
export async function filesByIds(repos: OwnedRepos, ids: string[]): Promise<Map<string, StoredFile>> {
  const rows = ids.length ? await repos.find(StoredFile, { id: { $in: ids } }) : [];
  return new Map(rows.map((f) => [f.id, f]));
}

/** A file of the user's by id (an artifact's content or thumbnail). */
export function fileOf(repos: OwnedRepos, fileId: string): Promise<StoredFile> {
  return repos.get(StoredFile, fileId, 'artifact content');
}

/**
 * Deletes the artifacts' files created before `before`, about `limit` of them, whoever's:
 * retention. A content file takes its thumbnail along (their times may straddle `before`), and
 * the chunks and artifact rows go with them by foreign key. The number of files deleted.
 */
export async function deleteOlderThan(em: EntityManager, before: Date, limit: number): Promise<number> {
  const rows = await onEm<{ n: string }>(em, sql`with doomed as (
      select id from files where task_id is not null and created_at < ${before} order by created_at limit ${limit}),
    gone as (
      delete from files where id in (select id from doomed)
        or id in (select thumbnail_file_id from step_artifacts where file_id in (select id from doomed))
      returning 1)
    select count(*)::text as n from gone`);
  return Number(rows[0]?.n ?? 0);
}
