// Step artifacts (screenshots first): a device attaches a file to the step it is running. The
// type is read from the bytes (never taken from the device), images get a small WebP thumbnail
// for phones (sharp), and the content and thumbnail are files of the user's, in their quota.
import { createHash, randomUUID } from 'node:crypto';
import sharp from 'sharp';
import * as artifactsDb from '../db/artifacts.ts';
import type { ArtifactKind, StepArtifact, StoredFile } from '../db/entities.ts';
import type { FileStore } from '../db/file-store.ts';
import type { NewFile } from '../db/files.ts';
import type { OwnedRepos } from '../db/owned.ts';
import type { EntityManager } from '@mikro-orm/postgresql';
import { errors } from '../errors.ts';
import type { StepArtifactRef } from '../../workflows/api.ts';

export interface ArtifactLimits {
  /** Largest artifact, in bytes. */
  maxBytes: number;
  /** The user's storage quota (uploads and artifacts together). */
  quotaBytes: number;
}

export interface AttachArtifactInput {
  taskId: string;
  stepId: string;
  attempt: number;
  key: string;
  kind: ArtifactKind;
  name: string;
  bytes: Buffer;
}

/** The thumbnail's box: a phone's list row shows it at most this wide or high. */
export const THUMBNAIL_PX = 320;
/** Larger images are refused before they are decoded: a small PNG can claim a huge canvas. */
const MAX_PIXELS = 40_000_000;
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/gif']);
export const ALLOWED_ARTIFACTS = 'png, jpeg, webp, gif, pdf, json or UTF-8 text';

const startsWith = (b: Buffer, sig: number[] | string, at = 0) => {
  const bytes = typeof sig === 'string' ? Buffer.from(sig, 'latin1') : Buffer.from(sig);
  return b.length >= at + bytes.length && b.subarray(at, at + bytes.length).equals(bytes);
};

/** The artifact's type, by its bytes; null when it is not one we keep. */
export function artifactType(b: Buffer): string | null {
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (startsWith(b, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(b, 'RIFF') && startsWith(b, 'WEBP', 8)) return 'image/webp';
  if (startsWith(b, 'GIF87a') || startsWith(b, 'GIF89a')) return 'image/gif';
  if (startsWith(b, '%PDF-')) return 'application/pdf';
  if (b.includes(0)) return null;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(b).replace(/^\uFEFF/, '').trimStart();
    return text.startsWith('{') || text.startsWith('[') ? 'application/json' : 'text/plain';
  } catch {
    return null;
  }
}

/** A name to store and send back: no path, no control or bidi characters. */
export function artifactName(raw: string): string {
  const base = raw.replace(/^.*[\\/]/, '').replace(/[\u0000-\u001f\u007f\u202a-\u202e\u2066-\u2069]/g, '_').trim();
  return (base || 'artifact').slice(0, 255);
}

function fileRow(taskId: string, userId: string, name: string, contentType: string, bytes: Buffer): NewFile {
  const id = randomUUID();
  return {
    id, name, contentType, sizeBytes: bytes.length, taskId, createdAt: new Date(),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    storageKey: `artifacts/${userId}/${id}`,
  };
}

/**
 * Stores what the device attached to a step of the user's run (the caller checked the step is
 * in flight on that device). Refused: over `maxBytes` (413), a type we do not keep or an image
 * we cannot read (415), over the quota (413); all with code 1001.
 */
export async function attachArtifact(
  repos: OwnedRepos, store: FileStore, input: AttachArtifactInput, limits: ArtifactLimits,
): Promise<StepArtifactRef> {
  const { bytes } = input;
  if (bytes.length > limits.maxBytes) throw errors.payloadTooLarge(`artifact over ${limits.maxBytes} bytes`);
  const contentType = artifactType(bytes);
  if (!contentType) throw errors.unsupportedMediaType(`artifact type not allowed (by its content): send ${ALLOWED_ARTIFACTS}`);
  if (input.kind === 'screenshot' && !IMAGE_TYPES.has(contentType)) throw errors.unsupportedMediaType('a screenshot must be an image (png, jpeg, webp or gif)');
  const name = artifactName(input.name);

  let size: { width: number; height: number } | null = null;
  let thumb: Buffer | null = null;
  if (IMAGE_TYPES.has(contentType)) {
    try {
      const image = sharp(bytes, { limitInputPixels: MAX_PIXELS, failOn: 'error' });
      const meta = await image.metadata();
      size = { width: meta.width ?? 0, height: meta.height ?? 0 };
      thumb = await image
        .resize({ width: THUMBNAIL_PX, height: THUMBNAIL_PX, fit: 'inside', withoutEnlargement: true })
        .webp({ quality: 70 })
        .toBuffer();
    } catch {
      throw errors.unsupportedMediaType(`not a readable ${contentType} image (or over ${MAX_PIXELS} pixels)`);
    }
  }

  const content = { file: fileRow(input.taskId, repos.userId, name, contentType, bytes), bytes };
  const thumbnail = thumb
    ? { file: fileRow(input.taskId, repos.userId, `${name.replace(/\.[^.]*$/, '')}.thumb.webp`, 'image/webp', thumb), bytes: thumb }
    : null;
  const stored = await artifactsDb.insertWithinQuota(repos, store, {
    id: randomUUID(), taskId: input.taskId, stepId: input.stepId, attempt: input.attempt, stepKey: input.key, kind: input.kind,
    width: size?.width ?? null, height: size?.height ?? null,
  }, content, thumbnail, limits.quotaBytes);
  if ('over' in stored) throw errors.payloadTooLarge(`storage quota exceeded: ${stored.over} of ${limits.quotaBytes} bytes used`);
  return artifactRef(stored.artifact, content.file);
}

/** The reference the run records (`step.artifact`) and the REST API lists. */
export function artifactRef(a: StepArtifact, content: Pick<StoredFile, 'name' | 'contentType' | 'sizeBytes'>): StepArtifactRef {
  return {
    artifact_id: a.id, kind: a.kind, name: content.name, content_type: content.contentType, size: content.sizeBytes,
    has_thumbnail: a.thumbnailFileId !== null, width: a.width ?? null, height: a.height ?? null,
  };
}

/** The references of every artifact stored for a step key, on any API node (see ofStepKey). */
export async function storedRefsOfStep(em: EntityManager, taskId: string, stepKey: string): Promise<StepArtifactRef[]> {
  return (await artifactsDb.ofStepKey(em, taskId, stepKey)).map(({ artifact, content }) => artifactRef(artifact, content));
}
