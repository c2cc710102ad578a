// Files' bytes in PostgreSQL, in fixed-size chunks (table file_chunks). PostgreSQL rather than
// an S3-compatible server: every node already reaches it, it is the one thing the operator backs
// up, a file's bytes commit in the same transaction as its row (no orphan, no row without
// bytes), and deleting a user or a file removes the bytes by foreign key. Files are capped at
// FILE_MAX_BYTES (megabytes, not gigabytes), which is well within what bytea rows carry.
import { Readable } from 'node:stream';
import type { FileStore, StoreConnection, StoredContent } from './file-store.ts';
import { boundOnEm, sql } from './sql.ts';

/**
 * Bytes per row: a download holds one chunk in memory at a time, and a chunk stays far below
 * the 1 GB bytea limit and the pg driver's per-row buffering.
 */
export const CHUNK_BYTES = 256 * 1024;

export class PgFileStore implements FileStore {
  private readonly chunkBytes: number;

  constructor(opts: { chunkBytes?: number } = {}) {
    this.chunkBytes = opts.chunkBytes ?? CHUNK_BYTES;
  }

  async put(db: StoreConnection, key: string, source: Readable): Promise<number> {
    let seq = 0;
    let size = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const write = async (data: Buffer) => {
      await boundOnEm(db, sql`insert into file_chunks (storage_key, seq, data) values (${key}, ${seq++}, ${data})`);
      size += data.length;
    };
    for await (const chunk of source) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      pending.push(buf);
      pendingBytes += buf.length;
      while (pendingBytes >= this.chunkBytes) {
        const all = Buffer.concat(pending);
        await write(all.subarray(0, this.chunkBytes));
        const rest = all.subarray(this.chunkBytes);
        pending = rest.length ? [rest] : [];
        pendingBytes = rest.length;
      }
    }
    // An empty file still gets its (empty) chunk 0: open() tells "no bytes" from "nothing stored".
    if (pendingBytes || seq === 0) await write(Buffer.concat(pending));
    return size;
  }

  async open(db: StoreConnection, key: string): Promise<StoredContent | null> {
    const [row] = await boundOnEm<{ chunks: string; size: string }>(db,
      sql`select count(*)::text as chunks, coalesce(sum(octet_length(data)), 0)::text as size from file_chunks where storage_key = ${key}`);
    const chunks = Number(row.chunks);
    if (chunks === 0) return null;
    let seq = 0;
    // Pulls one chunk per read: a slow client holds one chunk, not the file.
    const stream = new Readable({
      read() {
        if (seq === chunks) {
          this.push(null);
          return;
        }
        boundOnEm<{ data: Buffer }>(db, sql`select data from file_chunks where storage_key = ${key} and seq = ${seq++}`)
          .then(([r]) => {
            if (!r) this.destroy(new Error(`file ${key}: chunk ${seq - 1} is missing`));
            else this.push(r.data);
          }, (err: Error) => this.destroy(err));
      },
    });
    return { size: Number(row.size), stream };
  }

  async remove(db: StoreConnection, key: string): Promise<void> {
    await boundOnEm(db, sql`delete from file_chunks where storage_key = ${key}`);
  }
}
