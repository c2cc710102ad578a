// The PostgreSQL file store (src/db/file-chunks.ts) on the migrated test database: bytes
// come back exactly as written, whatever the pieces they arrived in; the rows are the chunks the
// size implies; the bytes commit only with their file row and go when the row (or its user) goes.
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { openOrm, type Orm } from '../../src/db/orm.ts';
import type { StoreConnection } from '../../src/db/file-store.ts';
import { PgFileStore } from '../../src/db/file-chunks.ts';
import { testEnv } from '../helpers/env.ts';

const CHUNK = 1000;
const store = new PgFileStore({ chunkBytes: CHUNK });
let orm: Orm;

beforeAll(async () => {
  orm = await openOrm(testEnv.databaseUrl);
});

afterAll(async () => {
  await orm?.close(true);
});

/** A stream yielding `data` in pieces of the given sizes (cycled), none aligned with a chunk. */
function piecewise(data: Buffer, sizes: number[]): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length];
    pieces.push(data.subarray(at, at + n));
    at += n;
  }
  return Readable.from(pieces);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

const chunkRows = async (db: StoreConnection, key: string) =>
  (await db.execute<{ seq: number; n: number }[]>(
    'select seq, octet_length(data) as n from file_chunks where storage_key = ? order by seq', [key],
  )).map((r) => [r.seq, r.n]);

/** A user and a file row owning `key`, as the files route writes them. */
async function fileRow(db: StoreConnection, key: string, size: number): Promise<{ userId: string; fileId: string }> {
  const userId = randomUUID();
  const fileId = randomUUID();
  await db.execute('insert into users (id, email, password_hash) values (?, ?, ?)', [userId, `${userId}@example.com`, 'x']);
  await db.execute(
    'insert into files (id, user_id, name, content_type, size_bytes, sha256, storage_key) values (?, ?, ?, ?, ?, ?, ?)',
    [fileId, userId, 'f.bin', 'application/zip', size, '0'.repeat(64), key],
  );
  return { userId, fileId };
}

describe('PgFileStore', () => {
  it('gives back exactly the bytes written, in chunk-size rows, whatever pieces they came in', async () => {
    const data = randomBytes(2 * CHUNK + 345);
    const key = `files/test/${randomUUID()}`;
    const em = orm.em.fork();
    await em.transactional(async (tx) => {
      expect(await store.put(tx, key, piecewise(data, [1, 999, 1234, 7]))).toBe(data.length);
      await fileRow(tx, key, data.length);
    });
    expect(await chunkRows(em, key)).toEqual([[0, CHUNK], [1, CHUNK], [2, 345]]);
    const content = await store.open(em, key);
    expect(content?.size).toBe(data.length);
    expect((await readAll(content!.stream)).equals(data)).toBe(true);

    await store.remove(em, key);
    expect(await store.open(em, key)).toBeNull();
    expect(await chunkRows(em, key)).toEqual([]);
  });

  it('an empty file is stored (size 0), a key never written is not', async () => {
    const key = `files/test/${randomUUID()}`;
    const em = orm.em.fork();
    await em.transactional(async (tx) => {
      expect(await store.put(tx, key, Readable.from([]))).toBe(0);
      await fileRow(tx, key, 0);
    });
    const content = await store.open(em, key);
    expect(content?.size).toBe(0);
    expect((await readAll(content!.stream)).length).toBe(0);
    expect(await store.open(em, `files/test/${randomUUID()}`)).toBeNull();
  });

  it('bytes without a file row do not commit (the foreign key is checked at commit)', async () => {
    const key = `files/test/${randomUUID()}`;
    const em = orm.em.fork();
    await expect(em.transactional((tx) => store.put(tx, key, Readable.from([randomBytes(10)]))))
      .rejects.toThrow(/foreign key/);
    expect(await chunkRows(em, key)).toEqual([]);
  });

  it('deleting the user deletes the file row and its bytes', async () => {
    const key = `files/test/${randomUUID()}`;
    const em = orm.em.fork();
    const owner = await em.transactional(async (tx) => {
      await store.put(tx, key, Readable.from([randomBytes(CHUNK + 1)]));
      return fileRow(tx, key, CHUNK + 1);
    });
    expect((await chunkRows(em, key)).length).toBe(2);
    await em.execute('delete from users where id = ?', [owner.userId]);
    expect(await chunkRows(em, key)).toEqual([]);
  });
});
