// Files: multipart upload streamed to disk (never buffered whole), type whitelist by content,
// size limit and per-user quota; metadata in `files`, bytes in the file store (src/db/file-chunks.ts), received
// first into a scratch file under `${DATA_DIR}/uploads`.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join, resolve } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { TextDecoder } from 'node:util';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import type { Context } from 'koa';
import { z } from 'zod';
import type { StoredFile } from '../../db/entities.ts';
import * as filesDb from '../../db/files.ts';
import type { OwnedRepos } from '../../db/owned.ts';
import { AppError, errors } from '../../errors.ts';
import type { FileStore } from '../../db/file-store.ts';
import { PgFileStore } from '../../db/file-chunks.ts';
import { envelope } from '../middleware.ts';
import { pageOf, pageQuery } from '../paging.ts';
import { defineRoute, idParams } from '../route.ts';
import { deleted } from '../schemas/common.ts';
import { fileData, filePage } from '../schemas/files.ts';

export interface FileRouteOptions {
  dataDir: string;
  maxBytes: number;
  quotaBytes: number;
  /** Default: PostgreSQL, which every API node reads. */
  store?: FileStore;
}

export const UPLOAD_PATH = '/files/upload';
export const fileListQuery = pageQuery.extend({}).strict();

/** Bytes read before the type is decided (or the whole file when smaller). */
const HEAD_BYTES = 512;
/** Multipart framing around the file (boundaries, part headers): a Content-Length over the limit by more is refused unread. */
const MULTIPART_SLACK = 64 * 1024;
const ALLOWED = 'png, jpeg, gif, webp, pdf, zip, json, plain text (UTF-8) or csv';

// ---- type detection by content -------------------------------------------------------------

const startsWith = (b: Buffer, sig: number[] | string, at = 0) => {
  const bytes = typeof sig === 'string' ? Buffer.from(sig, 'latin1') : Buffer.from(sig);
  return b.length >= at + bytes.length && b.subarray(at, at + bytes.length).equals(bytes);
};

/** The binary types we accept, by their magic bytes. */
function sniffBinary(head: Buffer): string | null {
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(head, 'GIF87a') || startsWith(head, 'GIF89a')) return 'image/gif';
  if (startsWith(head, 'RIFF') && startsWith(head, 'WEBP', 8)) return 'image/webp';
  if (startsWith(head, '%PDF-')) return 'application/pdf';
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04]) || startsWith(head, [0x50, 0x4b, 0x05, 0x06]) || startsWith(head, [0x50, 0x4b, 0x07, 0x08])) {
    return 'application/zip';
  }
  return null;
}

const TEXT_TYPES = new Set(['application/json', 'text/plain', 'text/csv']);

/** Counts, hashes, checks the type and the limit of the bytes flowing through it. */
class UploadInspector extends Transform {
  size = 0;
  readonly hash: Hash = createHash('sha256');
  type: string | null = null;
  private head: Buffer[] = [];
  private headLength = 0;
  /** For text types: every byte must be UTF-8 (checked as it streams) and none may be NUL. */
  private utf8: TextDecoder | null = null;
  private readonly limit: number;
  private readonly overLimit: () => AppError;
  private readonly filename: string;

  constructor(limit: number, overLimit: () => AppError, filename: string) {
    super();
    this.limit = limit;
    this.overLimit = overLimit;
    this.filename = filename;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.limit) return cb(this.overLimit());
    this.hash.update(chunk);
    if (this.type !== null) return cb(this.check(chunk), chunk);
    this.head.push(chunk);
    this.headLength += chunk.length;
    if (this.headLength < HEAD_BYTES) return cb();
    this.decideAndPass(cb);
  }

  override _flush(cb: TransformCallback): void {
    if (this.type === null) {
      this.decideAndPass((err, data) => {
        if (err) return cb(err);
        if (data) this.push(data);
        cb(this.finish());
      });
      return;
    }
    cb(this.finish());
  }

  private decideAndPass(cb: TransformCallback): void {
    const head = Buffer.concat(this.head);
    this.head = [];
    const binary = sniffBinary(head);
    if (binary) {
      this.type = binary;
      return cb(null, head);
    }
    this.utf8 = new TextDecoder('utf-8', { fatal: true });
    let text: string;
    try {
      if (head.includes(0)) throw new Error('NUL byte');
      text = this.utf8.decode(head, { stream: true });
    } catch {
      return cb(notAllowed());
    }
    const start = text.replace(/^\uFEFF/, '').trimStart();
    this.type = start.startsWith('{') || start.startsWith('[')
      ? 'application/json'
      : /\.csv$/i.test(this.filename) ? 'text/csv' : 'text/plain';
    cb(null, head);
  }

  private check(chunk: Buffer): AppError | null {
    if (!this.utf8) return null;
    try {
      if (chunk.includes(0)) throw new Error('NUL byte');
      this.utf8.decode(chunk, { stream: true });
      return null;
    } catch {
      return notAllowed();
    }
  }

  /** A text file must not end inside a UTF-8 sequence. */
  private finish(): AppError | null {
    if (!this.utf8) return null;
    try {
      this.utf8.decode();
      return null;
    } catch {
      return notAllowed();
    }
  }
}

const notAllowed = () => errors.unsupportedMediaType(`file type not allowed (by its content): send ${ALLOWED}`);

// ---- names ---------------------------------------------------------------------------------

/** The client's file name, made safe to store and to send back: no path, no control or bidi characters, at most 255 characters. */
export function sanitizeFilename(raw: string | undefined): string {
  let name = (raw ?? '').normalize('NFC');
  name = name.split(/[\\/]/).pop() ?? '';
  name = name
    .replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g, '')
    .replace(/[<>:"|?*]/g, '_')
    .trim()
    .replace(/^\.+/, '')
    .trim();
  if (!name) return 'file';
  const chars = Array.from(name);
  if (chars.length <= 255) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? Array.from(name.slice(dot)) : [];
  return ext.length > 0 && ext.length <= 16
    ? chars.slice(0, 255 - ext.length).join('') + ext.join('')
    : chars.slice(0, 255).join('');
}

// ---- upload --------------------------------------------------------------------------------

interface Received {
  tmpPath: string;
  size: number;
  sha256: string;
  contentType: string;
  name: string;
}

interface Limits {
  dir: string;
  /** Bytes this upload may have (the smaller of the file limit and what is left of the quota). */
  limit: number;
  overLimit: () => AppError;
}

/** Streams one file part to a temporary file next to its final place; removes it on any failure. */
async function storePart(stream: Readable, filename: string | undefined, limits: Limits): Promise<Received> {
  const tmpPath = join(limits.dir, `.${randomUUID()}.part`);
  const inspector = new UploadInspector(limits.limit, limits.overLimit, filename ?? '');
  try {
    await pipeline(stream, inspector, createWriteStream(tmpPath, { flags: 'wx', mode: 0o600 }));
  } catch (err) {
    await rm(tmpPath, { force: true });
    throw err;
  }
  return {
    tmpPath, size: inspector.size, sha256: inspector.hash.digest('hex'),
    contentType: inspector.type ?? 'text/plain', name: sanitizeFilename(filename),
  };
}

/**
 * Parses the multipart body as it arrives: one part named `file`, other fields ignored. Rejects
 * as soon as something is wrong (the temporary file is gone by then); the rest of the request
 * body is read and discarded so the client gets the answer.
 */
async function receiveUpload(req: IncomingMessage, limits: Limits): Promise<Received> {
  let bb: busboy.Busboy;
  try {
    bb = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      limits: { files: 1, fileSize: limits.limit + 1, fields: 20, fieldSize: 64 * 1024, parts: 30, headerPairs: 50 },
    });
  } catch (err) {
    throw errors.unsupportedMediaType(`content type must be multipart/form-data with a boundary (${(err as Error).message})`);
  }
  let file: Promise<Received> | null = null;
  const done = new Promise<Received>((resolveUpload, reject) => {
    const invalid = (message: string) => reject(errors.invalid(message, [{ path: 'file', message }]));
    bb.on('file', (field, stream, info) => {
      if (field !== 'file') {
        stream.resume();
        invalid(`unexpected file part "${field.slice(0, 50)}": send one part named file`);
        return;
      }
      file = storePart(stream, info.filename, limits);
      file.catch(reject);
    });
    bb.on('filesLimit', () => invalid('one file per upload'));
    bb.on('partsLimit', () => invalid('too many parts'));
    bb.on('fieldsLimit', () => invalid('too many fields'));
    bb.on('error', (err) => {
      const message = `malformed multipart body: ${(err as Error).message}`;
      reject(errors.invalid(message, [{ path: '(root)', message }]));
    });
    bb.on('close', () => {
      if (!file) invalid('required: one part named file');
      else file.then(resolveUpload, reject);
    });
    req.once('close', () => {
      if (!req.complete) reject(errors.invalid('upload interrupted'));
    });
  });
  req.pipe(bb);
  try {
    return await done;
  } catch (err) {
    // Stop parsing (this ends the file part's pipeline), wait for its cleanup, drop the rest.
    req.unpipe(bb);
    bb.destroy();
    req.resume();
    const stored = await (file as Promise<Received> | null)?.catch(() => null);
    if (stored) await rm(stored.tmpPath, { force: true });
    throw err;
  }
}

// ---- routes --------------------------------------------------------------------------------

function presentFile(f: StoredFile) {
  return {
    id: f.id,
    name: f.name,
    content_type: f.contentType,
    size_bytes: Number(f.sizeBytes),
    sha256: f.sha256,
    created_at: f.createdAt.toISOString(),
  };
}

export function fileRoutes(opts: FileRouteOptions) {
  const root = resolve(opts.dataDir);
  const store = opts.store ?? new PgFileStore();
  const mib = (n: number) => `${+(n / 1024 / 1024).toFixed(2)} MiB`;

  async function upload(ctx: Context) {
    const repos: OwnedRepos = ctx.state.repos;
    if (!ctx.is('multipart/form-data')) throw errors.unsupportedMediaType('content type must be multipart/form-data');
    const used = await filesDb.usedBytes(repos);
    const left = Math.max(0, opts.quotaBytes - used);
    const overQuota = (usedNow: number) => errors.payloadTooLarge(
      `storage quota exceeded: ${usedNow} of ${opts.quotaBytes} bytes (${mib(opts.quotaBytes)}) used; delete files to make room`,
    );
    const quotaError = () => overQuota(used);
    const sizeError = () => errors.payloadTooLarge(`file over the ${opts.maxBytes} byte (${mib(opts.maxBytes)}) limit`);
    if (left === 0) throw quotaError();
    const byQuota = left < opts.maxBytes;
    const limits: Limits = {
      dir: join(root, 'uploads', repos.userId),
      limit: byQuota ? left : opts.maxBytes,
      overLimit: byQuota ? quotaError : sizeError,
    };
    // A declared length far over the limit is refused before reading anything.
    const declared = Number(ctx.get('Content-Length') || 0);
    if (declared > limits.limit + MULTIPART_SLACK) throw limits.overLimit();

    await mkdir(limits.dir, { recursive: true, mode: 0o700 });
    const got = await receiveUpload(ctx.req, limits);

    const id = randomUUID();
    const storageKey = `files/${repos.userId}/${id}`;
    let stored: Awaited<ReturnType<typeof filesDb.insertWithinQuota>>;
    try {
      // In the row's transaction: the bytes are there exactly when the row is.
      stored = await filesDb.insertWithinQuota(repos, {
        id, name: got.name, contentType: got.contentType, sizeBytes: got.size, sha256: got.sha256, storageKey, createdAt: new Date(),
      }, opts.quotaBytes, (tx) => store.put(tx, storageKey, createReadStream(got.tmpPath)));
    } finally {
      await rm(got.tmpPath, { force: true });
    }
    if ('over' in stored) throw overQuota(stored.over);
    envelope(ctx, { file: presentFile(stored.file) }, 201);
  }

  return [
    defineRoute({
      method: 'post', path: UPLOAD_PATH, tag: 'files', auth: 'user',
      summary: 'Upload a file: multipart/form-data with one part named `file`. Allowed by content: png, jpeg, gif, webp, pdf, zip, ' +
        'json, UTF-8 text, csv (415 otherwise; content_type is the detected type). 413 over FILE_MAX_BYTES or the per-user quota (USER_QUOTA_BYTES)',
      multipartFile: 'file', success: { status: 201, description: 'The stored file\'s metadata', data: fileData }, errors: [400, 401, 413, 415],
      handler: upload,
    }),
    defineRoute<undefined, z.infer<typeof fileListQuery>>({
      method: 'get', path: '/files', tag: 'files', auth: 'user', summary: 'List my files, newest first',
      query: fileListQuery, success: { status: 200, description: 'A page of my files', data: filePage }, errors: [400, 401],
      async handler(ctx, { query }) {
        const [rows, total] = await filesDb.page(ctx.state.repos, (query.page - 1) * query.page_size, query.page_size);
        envelope(ctx, pageOf(rows.map(presentFile), total, query));
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'get', path: '/files/:id', tag: 'files', auth: 'user', summary: 'A file\'s metadata',
      params: idParams, success: { status: 200, description: 'The file\'s metadata', data: fileData }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        const f = await filesDb.get(ctx.state.repos, params.id);
        envelope(ctx, { file: presentFile(f) });
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'get', path: '/files/:id/content', tag: 'files', auth: 'user',
      summary: 'Download a file: its bytes with its content type, as an attachment (not the JSON envelope)',
      params: idParams, success: { status: 200, description: 'the file\'s bytes (errors are the JSON envelope)', data: 'binary' }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        const f = await filesDb.get(ctx.state.repos, params.id);
        const content = await store.open(ctx.state.em, f.storageKey);
        if (!content) throw errors.notFound('file content');
        ctx.body = content.stream;
        ctx.status = 200;
        // The type is the one detected at upload, never the name's extension: set it first, so
        // attachment() (which would derive one from the name) leaves it alone.
        ctx.type = TEXT_TYPES.has(f.contentType) ? `${f.contentType}; charset=utf-8` : f.contentType;
        ctx.length = content.size;
        // Header bytes past ASCII are read differently by different clients: an ASCII fallback
        // name, and the exact one in RFC 8187's filename* when they differ.
        ctx.attachment(f.name, { fallback: f.name.replace(/[^\x20-\x7e]/g, '_') });
        ctx.set('X-Content-Type-Options', 'nosniff');
        ctx.set('Cache-Control', 'private, no-cache');
        ctx.set('ETag', `"${f.sha256}"`);
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'delete', path: '/files/:id', tag: 'files', auth: 'user', summary: 'Delete a file (its row and its bytes)',
      params: idParams, success: { status: 200, description: 'Deleted', data: deleted }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        const f = await filesDb.get(ctx.state.repos, params.id);
        await filesDb.remove(ctx.state.repos, f);
        await store.remove(ctx.state.em, f.storageKey);
        envelope(ctx, { deleted: true });
      },
    }),
  ];
}
