import { CommonErrors, openDatabase, OutpostError, type Database } from '@outpost/common';
import { PgLevel } from '@outpost/pg-level';
import type { CoreConfig } from './config.js';
import { CoreErrors } from './errors.js';

export interface CoreDatabase {
  db: Database;
  kind: 'level' | 'postgres';
  /** Whether the store answers now (level: open; PostgreSQL: a query within 2 s). */
  reachable(): Promise<boolean>;
  /** Where it is, without credentials (for logs and /health). */
  where: string;
}

/** The connection string without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

/**
 * Opens the core's records: level in `dataDir`, or PostgreSQL (schema migrations applied
 * at open; the table is held by one core at a time for now, as a level directory is).
 */
export async function openCoreDatabase(config: CoreConfig): Promise<CoreDatabase> {
  const store = config.store;
  if (store.kind === 'level') {
    const db = await openDatabase(config.dataDir);
    return { db, kind: 'level', where: config.dataDir, reachable: async () => db.status === 'open' };
  }
  const where = redactUrl(store.url);
  const db = new PgLevel({ connectionString: store.url, table: store.table, poolSize: store.poolSize, exclusive: true, valueEncoding: 'json' });
  try {
    await db.open();
  } catch (err) {
    const code = (err as { code?: string }).code;
    const cause = (err as { cause?: { code?: string } }).cause;
    if (code === 'LEVEL_LOCKED' || cause?.code === 'LEVEL_LOCKED') {
      throw new OutpostError(CommonErrors.DB_LOCKED, `the core's table ${store.table} on ${where} is in use by another core (one core per table for now)`, { cause: err, details: { location: where } });
    }
    throw new OutpostError(CoreErrors.STORE_UNREACHABLE, `cannot open the core's store on PostgreSQL ${where}: ${(err as Error).message}`, { status: 503, cause: err, details: { location: where } });
  }
  return { db: db as unknown as Database, kind: 'postgres', where, reachable: () => db.ping() };
}
