import { mkdir } from 'node:fs/promises';
import { Level } from 'level';
import type { AbstractBatchOperation, AbstractBatchOptions, AbstractLevel, AbstractSublevel } from 'abstract-level';
import { CommonErrors, OutpostError } from './errors.js';

/**
 * A database with string keys and JSON values: any abstract-level backend (classic-level
 * on disk, the default; PostgreSQL through @outpost/pg-level for the core).
 */
export type Database = AbstractLevel<string | Buffer | Uint8Array, string, unknown>;
/** A typed sublevel (one per entity) of a {@link Database}. */
export type Sublevel<V> = AbstractSublevel<Database, string | Buffer | Uint8Array, string, V>;
/** One operation of an atomic `db.batch([...])` that may span sublevels. */
export type BatchOp = AbstractBatchOperation<Database, string, unknown>;

/**
 * Opens (creating if needed) the level database at `location`; a directory it creates
 * (and any missing parent) is mode 0700: the db holds keys and credentials. A database already open
 * in another process is a clear start-up error naming the directory
 * (`COMMON_DB_LOCKED`), not a stack trace.
 */
export async function openDatabase(location: string): Promise<Database> {
  // The directory first: a Level opens itself on the next tick and would create it 0755.
  await mkdir(location, { recursive: true, mode: 0o700 }).catch(() => undefined);
  const db: Database = new Level<string, unknown>(location, { valueEncoding: 'json' });
  try {
    await db.open();
  } catch (err) {
    const code = (err as { code?: string }).code;
    const causeCode = ((err as { cause?: { code?: string } }).cause ?? {}).code;
    if (code === 'LEVEL_LOCKED' || causeCode === 'LEVEL_LOCKED') {
      throw new OutpostError(
        CommonErrors.DB_LOCKED,
        `the database in ${location} is already in use by another process (is another Outpost service running with the same data dir?)`,
        { cause: err, details: { location } },
      );
    }
    throw new OutpostError(CommonErrors.DB_OPEN, `cannot open the database in ${location}: ${(err as Error).message}`, {
      cause: err,
      details: { location },
    });
  }
  return db;
}

/** A JSON sublevel for one entity type. Values are typed by the caller. */
export function sublevel<V>(db: Database, name: string): Sublevel<V> {
  return db.sublevel<string, V>(name, { valueEncoding: 'json' });
}

/** Reads a key, `undefined` when absent (level 10 `get` already resolves undefined). */
export async function getJson<V>(store: Sublevel<V>, key: string): Promise<V | undefined> {
  return store.get(key);
}

/** Every value of a sublevel, in key order. For start-up loads and small entities. */
export async function allValues<V>(store: Sublevel<V>): Promise<V[]> {
  return store.values().all();
}

/**
 * Batch options for a write that must survive a power cut once acknowledged (audit log,
 * administrators): classic-level fsyncs its log for it; a PostgreSQL commit is durable
 * anyway (abstract-level's types do not know the option, hence the cast).
 */
export const DURABLE: AbstractBatchOptions<string, unknown> = { sync: true } as AbstractBatchOptions<string, unknown>;
