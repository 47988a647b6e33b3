import { mkdir } from 'node:fs/promises';
import { CommonErrors, openDatabase, OutpostError, type AppState, type Database, type Logger } from '@outpost/common';
import type { Middleware } from 'koa';
import { PgLeases, PgLevel } from '@outpost/pg-level';
import type { CoreConfig } from './config.js';
import { CoreErrors } from './errors.js';

export interface CoreDatabase {
  db: Database;
  kind: 'level' | 'postgres';
  /** Whether the store answers now (level: open; PostgreSQL: a query within 2 s). */
  reachable(): Promise<boolean>;
  /** Where it is, without credentials (for logs and /health). */
  where: string;
  /** PostgreSQL only: statements, failures, seconds, pool connections, lock. */
  stats?(): { queries: number; failed: number; seconds: number; total: number; idle: number; waiting: number; lockHeld: boolean };
  /** PostgreSQL only: leases for once-only work, shared by the cores on this table. */
  leases?(holder: string, ttlMs: number): PgLeases;
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
export async function openCoreDatabase(config: CoreConfig, log?: Logger): Promise<CoreDatabase> {
  const store = config.store;
  if (store.kind === 'level') {
    const db = await openDatabase(config.dataDir);
    return { db, kind: 'level', where: config.dataDir, reachable: async () => db.status === 'open' };
  }
  const where = redactUrl(store.url);
  // Records go to PostgreSQL; files (owner token, keys, package content) still live here.
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
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
  db.on('lock-lost', (err: unknown) => log?.fatal({ err, table: store.table, at: where }, 'another process took the table while this core had lost its session: this core no longer owns its store and refuses changes (503); stop it'));
  return { db: db as unknown as Database, kind: 'postgres', where, reachable: () => db.ping(), stats: () => ({ ...db.counters, ...db.poolStats() }), leases: (holder, ttlMs) => new PgLeases(db, { holder, ttlMs, scope: store.table }) };
}

/**
 * A request that failed because the store did not answer (PostgreSQL down, failing over)
 * is 503 `CORE_STORE_UNAVAILABLE` with `Retry-After`, not a 500: callers (agents, site
 * servers, the CLI) retry later, and what was refused was not applied.
 */
export function storeErrors(): Middleware<AppState> {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!isStoreFailure(err)) throw err;
      ctx.set('retry-after', '5');
      throw new OutpostError(CoreErrors.STORE_UNAVAILABLE, `the core's store does not answer (${(err as Error).message}); retry later`, { status: 503, cause: err });
    }
  };
}

function isStoreFailure(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === 'LEVEL_IO_ERROR' || e.code === 'LEVEL_DATABASE_NOT_OPEN') return true;
  }
  return false;
}
