// Where uploaded files' bytes live. Every API node must read what any other node wrote, so the
// bytes cannot stay on one node's disk; the files route only sees this interface.
import type { Readable } from 'node:stream';
import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * The connection a store works on. The route passes its request's entity manager, or the
 * transaction that inserts the file's row: then the bytes and the row commit (or vanish) together.
 */
export type StoreConnection = Pick<EntityManager, 'execute'>;

export interface StoredContent {
  size: number;
  stream: Readable;
}

export interface FileStore {
  /** Stores everything `source` yields under `key`; resolves with the number of bytes. */
  put(db: StoreConnection, key: string, source: Readable): Promise<number>;
  /** The bytes under `key`, streamed; null when there are none. */
  open(db: StoreConnection, key: string): Promise<StoredContent | null>;
  remove(db: StoreConnection, key: string): Promise<void>;
}
