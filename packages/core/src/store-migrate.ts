import { createHash } from 'node:crypto';
import { OutpostError, type Database } from '@outpost/common';
import type { CoreConfig } from './config.js';
import { CoreErrors } from './errors.js';
import { openCoreDatabase } from './store-backend.js';
import { JOURNAL_PREFIX } from './journal-level.js';

/** What a copy moved: entries and a SHA-256 over every (key, value) in key order, both as stored. */
export interface StoreDigest {
  entries: number;
  sha256: string;
}

const RAW = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;
type RawIterator = AsyncIterable<[Buffer, Buffer]>;

/** A level store's change journal is its own history, not records: neither copied nor digested (the target journals the copy itself). */
const JOURNAL = Buffer.from(JOURNAL_PREFIX);
const isJournal = (k: Buffer): boolean => k.length >= JOURNAL.length && JOURNAL.compare(k, 0, JOURNAL.length) === 0;

function lengthPrefixed(hash: ReturnType<typeof createHash>, b: Buffer): void {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(b.length);
  hash.update(n).update(b);
}

/** Entries and digest of a whole database, read raw (the bytes each backend holds). */
export async function storeDigest(db: Database): Promise<StoreDigest> {
  const hash = createHash('sha256');
  let entries = 0;
  for await (const [k, v] of db.iterator(RAW as never) as unknown as RawIterator) {
    if (isJournal(k)) continue;
    lengthPrefixed(hash, Buffer.from(k));
    lengthPrefixed(hash, Buffer.from(v));
    entries++;
  }
  return { entries, sha256: hash.digest('hex') };
}

/**
 * Copies every entry of `from` into `to` (which must be empty) in batches, raw, then
 * checks both sides hold the same count and digest. The stores are the same abstract-level
 * keyspace on either backend, so a level core's data becomes a PostgreSQL core's as is.
 */
export async function copyStore(from: Database, to: Database, onProgress?: (copied: number) => void, batchSize = 1000): Promise<{ source: StoreDigest; target: StoreDigest }> {
  for await (const _ of to.keys({ limit: 1 })) {
    throw new OutpostError(CoreErrors.MIGRATE_TARGET_NOT_EMPTY, 'the target store is not empty: migrate into an empty table or data dir', { status: 409 });
  }
  let batch = to.batch();
  let copied = 0;
  for await (const [k, v] of from.iterator(RAW as never) as unknown as RawIterator) {
    if (isJournal(k)) continue;
    batch.put(k as never, v as never, RAW as never);
    if (batch.length >= batchSize) {
      await batch.write();
      copied += batchSize;
      onProgress?.(copied);
      batch = to.batch();
    }
  }
  copied += batch.length;
  await batch.write();
  onProgress?.(copied);
  const [source, target] = await Promise.all([storeDigest(from), storeDigest(to)]);
  if (source.entries !== target.entries || source.sha256 !== target.sha256) {
    throw new OutpostError(CoreErrors.MIGRATE_MISMATCH, `the copy does not match: ${source.entries} entries (${source.sha256}) in the source, ${target.entries} (${target.sha256}) in the target`, { status: 500, details: { source, target } });
  }
  return { source, target };
}

/**
 * `outpost core migrate`: opens the core's current store (`from`, as its config says) and
 * the other one, copies and verifies. The core must be stopped (each store is held by one
 * process: a running core makes this fail with COMMON_DB_LOCKED).
 */
export async function migrateCoreStore(from: CoreConfig, to: CoreConfig, onProgress?: (copied: number) => void): Promise<{ source: StoreDigest; target: StoreDigest; from: string; to: string }> {
  const a = await openCoreDatabase(from);
  try {
    const b = await openCoreDatabase(to);
    try {
      return { ...(await copyStore(a.db, b.db, onProgress)), from: `${a.kind} ${a.where}`, to: `${b.kind} ${b.where}` };
    } finally {
      await b.db.close();
    }
  } finally {
    await a.db.close();
  }
}
