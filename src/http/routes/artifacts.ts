// A task's step artifacts: the list, each one's content and its thumbnail, owner-scoped (another
// user's task or artifact is a 404, as if it did not exist).
import type { Context } from 'koa';
import { z } from 'zod';
import * as artifactsDb from '../../db/artifacts.ts';
import type { StepArtifact, StoredFile } from '../../db/entities.ts';
import { PgFileStore } from '../../db/file-chunks.ts';
import type { FileStore } from '../../db/file-store.ts';
import * as tasksDb from '../../db/tasks.ts';
import { errors } from '../../errors.ts';
import { envelope } from '../middleware.ts';
import { defineRoute, idParams } from '../route.ts';
import { artifactList } from '../schemas/artifacts.ts';

export const artifactParams = idParams.extend({ artifact_id: z.uuid({ message: 'must be a UUID' }) });
type ArtifactParams = z.infer<typeof artifactParams>;

function present(a: StepArtifact, f: StoredFile) {
  return {
    id: a.id, task_id: a.taskId, step_id: a.stepId, attempt: a.attempt, kind: a.kind, name: f.name,
    content_type: f.contentType, size_bytes: f.sizeBytes, width: a.width ?? null, height: a.height ?? null,
    has_thumbnail: a.thumbnailFileId !== null, created_at: a.createdAt.toISOString(),
  };
}

export function artifactRoutes(opts: { store?: FileStore } = {}) {
  const store = opts.store ?? new PgFileStore();

  /** Sends a stored file's bytes as they are, never as something a browser would run. */
  async function sendFile(ctx: Context, f: StoredFile, disposition: 'inline' | 'attachment'): Promise<void> {
    const content = await store.open(ctx.state.em, f.storageKey);
    if (!content) throw errors.notFound('artifact content');
    ctx.body = content.stream;
    ctx.status = 200;
    ctx.type = f.contentType.startsWith('text/') || f.contentType === 'application/json' ? `${f.contentType}; charset=utf-8` : f.contentType;
    ctx.length = content.size;
    // Images show in an <img> (inline); anything else downloads.
    ctx.attachment(f.name, { type: disposition, fallback: f.name.replace(/[^\x20-\x7e]/g, '_') });
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Content-Security-Policy', "default-src 'none'; sandbox");
    ctx.set('Cache-Control', 'private, max-age=3600, immutable');
    ctx.set('ETag', `"${f.sha256}"`);
  }

  const binary = (path: string, summary: string, which: (a: StepArtifact) => string | null) =>
    defineRoute<undefined, undefined, ArtifactParams>({
      method: 'get', path, tag: 'tasks', auth: 'user', summary, params: artifactParams,
      success: { status: 200, description: 'the bytes (errors are the JSON envelope)', data: 'binary' }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        const a = await artifactsDb.getOfTask(ctx.state.repos, params.id, params.artifact_id);
        const fileId = which(a);
        if (!fileId) throw errors.notFound('thumbnail');
        const f = await artifactsDb.fileOf(ctx.state.repos, fileId);
        await sendFile(ctx, f, f.contentType.startsWith('image/') ? 'inline' : 'attachment');
      },
    });

  return [
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'get', path: '/tasks/:id/artifacts', tag: 'tasks', auth: 'user',
      summary: 'What the device attached to the steps of a task (screenshots, files), in the order they came',
      params: idParams, success: { status: 200, description: 'The task\'s artifacts', data: artifactList }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        await tasksDb.get(ctx.state.repos, params.id);
        const list = await artifactsDb.listOfTask(ctx.state.repos, params.id);
        const files = await artifactsDb.filesByIds(ctx.state.repos, list.map((a) => a.fileId));
        const shown = list.flatMap((a) => {
          const f = files.get(a.fileId);
          return f ? [present(a, f)] : [];
        });
        envelope(ctx, { list: shown, total: shown.length });
      },
    }),
    binary('/tasks/:id/artifacts/:artifact_id/content', 'An artifact\'s bytes, with its detected content type', (a) => a.fileId),
    binary('/tasks/:id/artifacts/:artifact_id/thumbnail', 'An image artifact\'s thumbnail (WebP, at most 320 px); 404 for other types',
      (a) => a.thumbnailFileId ?? null),
  ];
}
