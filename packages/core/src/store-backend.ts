import type { AbstractBatchOptions } from 'abstract-level';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { CommonErrors, openDatabase, OutpostError, type AppState, type Database, type Logger } from '@outpost/common';
import type { Middleware } from 'koa';
import { PgLeases, PgLevel, type ChangeEvent } from '@outpost/pg-level';
import type { CoreConfig } from './config.js';
import { CoreErrors } from './errors.js';
import type { ChangeFeed } from './journal.js';
import { LevelJournal } from './journal-level.js';
import { postgresFeed } from './journal-postgres.js';

export interface CoreDatabase {
  db: Database;
  kind: 'level' | 'postgres';
  /** Whether the store answers now (level: open; PostgreSQL: a query within 2 s). */
  reachable(): Promise<boolean>;
  /** Where it is, without credentials (for logs and /health). */
  where: string;
  /** PostgreSQL only: statements, failures, seconds, pool connections, lock; conflicts and applied changes of other cores. */
  stats?(): { queries: number; failed: number; seconds: number; total: number; idle: number; waiting: number; lockHeld: boolean; conflicts: number; applied: number; lastSeq: number };
  /**
   * Several cores (PostgreSQL): `fn` gets each change another core made to a record of
   * `sublevel` (key within it, the decoded value or undefined when deleted), in commit
   * order, and the current value of a record whose write was refused as a conflict. On
   * level (one core owns its directory) only {@link dispatch} calls it.
   */
  onRemote(sublevel: string, fn: (key: string, value: unknown) => void): void;
  /**
   * Runs the `onRemote` handlers of `sublevel` as if another core had made the change (a
   * replicated record written by the hierarchy: the owning module's memory follows it).
   */
  dispatch(sublevel: string, key: string, value: unknown): void;
  /** The store's change journal: every committed write, in order (see journal.ts). */
  feed: ChangeFeed;
  /** Applies what other cores committed until now (PostgreSQL), so an answer made next reflects it. */
  sync(): Promise<void>;
  /** PostgreSQL only: leases for once-only work, shared by the cores on this table. */
  leases?(holder: string, ttlMs: number): PgLeases;
  /** Waits until no other core holds the lock `name`, takes it; resolves with its release (start-up: creating and sharing the core's files). */
  lock(name: string): Promise<() => Promise<void>>;
}

/**
 * Sublevels whose records the core keeps in memory (loaded whole at start or read before
 * being written): a write to them is checked against the version this core last saw, so a
 * core never overwrites another's change it has not applied. Not tracked: append-only or
 * last-writer-wins data (audit entries, outputs, contacts, index entries derived from a
 * tracked record written in the same batch). `task-once` marks are tracked: a mark this core
 * never read must not exist, so two runs with one key cannot both take an agent.
 */
const UNTRACKED = ['audit', 'task-output', 'contacts', 'subnets', 'agent-macs'].map((name) => Buffer.from(`!${name}!`));

/** Whether a key's version is checked: called for every key written and every row read, so a byte compare of the prefix. */
const tracked = (key: Buffer): boolean => !UNTRACKED.some((p) => key.length >= p.length && key.compare(p, 0, p.length, 0, p.length) === 0);

/** `!name!key` (a sublevel of the root database) → [name, key]. */
function splitKey(key: Buffer): [string, string] | undefined {
  const m = /^!([^!]+)!([\s\S]*)$/.exec(key.toString('utf8'));
  return m ? [m[1]!, m[2]!] : undefined;
}

/** The `onRemote` handlers by sublevel; `dispatch` runs them (a handler that throws is logged, the rest still run). */
function remoteHandlers(log?: Logger): { add: CoreDatabase['onRemote']; dispatch: CoreDatabase['dispatch']; has(sublevel: string): boolean } {
  const handlers = new Map<string, Array<(key: string, value: unknown) => void>>();
  return {
    add(sublevel, fn) {
      const list = handlers.get(sublevel) ?? [];
      list.push(fn);
      handlers.set(sublevel, list);
    },
    dispatch(sublevel, key, value) {
      for (const fn of handlers.get(sublevel) ?? []) {
        try {
          fn(key, value);
        } catch (err) {
          log?.error({ err, sublevel, key }, "applying another core's change failed");
        }
      }
    },
    has: (sublevel) => handlers.has(sublevel),
  };
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
  const remote = remoteHandlers(log);
  if (store.kind === 'level') {
    const db = await openDatabase(config.dataDir);
    const feed = await LevelJournal.open(db, { retentionMs: store.journalRetention, log: log?.child({ module: 'journal' }) }).catch(async (err: unknown) => {
      await db.close().catch(() => undefined);
      throw err;
    });
    return { db, kind: 'level', where: config.dataDir, reachable: async () => db.status === 'open', onRemote: remote.add, dispatch: remote.dispatch, feed, sync: async () => undefined, lock: async () => async () => undefined };
  }
  const where = redactUrl(store.url);
  // Records go to PostgreSQL; files (owner token, keys, package content) still live here.
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const db = new PgLevel({
    connectionString: store.url,
    table: store.table,
    poolSize: store.poolSize,
    shared: true,
    tracks: tracked,
    journalRetentionMs: store.journalRetention,
    valueEncoding: 'json',
  });
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
  // Several cores share the table, but each needs a data dir of its own (its files, its HTTPS key): a
  // second core on this host with this data dir is refused, as level refuses a directory in use.
  const dirLock = await db.lock(`data-dir:${hostname()}:${resolve(config.dataDir)}`, { wait: false }).catch(async (err: unknown) => {
    await db.close().catch(() => undefined);
    throw new OutpostError(CoreErrors.STORE_UNREACHABLE, `cannot open the core's store on PostgreSQL ${where}: ${(err as Error).message}`, { status: 503, cause: err, details: { location: where } });
  });
  if (!dirLock) {
    await db.close().catch(() => undefined);
    throw new OutpostError(CommonErrors.DB_LOCKED, `the data dir ${config.dataDir} is in use by another core on this host (cores may share a store, each with its own data dir)`, { details: { location: config.dataDir } });
  }
  db.once('closing', () => void dirLock());
  // Before the first `change` listener (which starts the journal reader): the feed's head starts at the journal's end.
  const feed = postgresFeed(db, log?.child({ module: 'journal' }));
  db.on('change', (e: ChangeEvent) => {
    for (const op of e.ops) {
      const split = splitKey(op.key);
      if (!split || !remote.has(split[0])) continue;
      let value: unknown;
      try {
        value = op.value === undefined ? undefined : JSON.parse(op.value.toString('utf8'));
      } catch (err) {
        log?.error({ err, key: split[0] }, 'a change of another core is not JSON: skipped');
        continue;
      }
      remote.dispatch(split[0], split[1], value);
    }
  });
  db.on('journal-behind', (info: unknown) => log?.error({ ...(info as object) }, "this core was cut off from the store for longer than the journal is kept: its memory may miss other cores' changes; restart it"));
  return {
    db: db as unknown as Database,
    kind: 'postgres',
    where,
    reachable: () => db.ping(),
    stats: () => ({ ...db.counters, ...db.poolStats(), ...db.sharing }),
    onRemote: remote.add,
    dispatch: remote.dispatch,
    feed,
    sync: () => db.sync(),
    lock: (name) => db.lock(name),
    leases: (holder, ttlMs) => new PgLeases(db, { holder, ttlMs, scope: store.table }),
  };
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
      const failure = storeFailure(err);
      if (!failure) throw err;
      if (failure === 'LEVEL_CONFLICT') {
        // Another core changed a record this change was computed from; this core has its new value now.
        ctx.set('retry-after', '1');
        throw new OutpostError(CoreErrors.STORE_CONFLICT, `another core changed the same record at the same time; nothing was applied: retry (${(err as Error).message})`, { status: 503, cause: err });
      }
      ctx.set('retry-after', '5');
      throw new OutpostError(CoreErrors.STORE_UNAVAILABLE, `the core's store does not answer (${(err as Error).message}); retry later`, { status: 503, cause: err });
    }
  };
}

/** The store's error code when `err` (or a cause) is a store failure. */
export function storeFailure(err: unknown): 'LEVEL_IO_ERROR' | 'LEVEL_DATABASE_NOT_OPEN' | 'LEVEL_CONFLICT' | undefined {
  for (let e = err as { code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === 'LEVEL_IO_ERROR' || e.code === 'LEVEL_DATABASE_NOT_OPEN' || e.code === 'LEVEL_CONFLICT') return e.code;
  }
  return undefined;
}

/** Whether a write was refused because another core changed the same record (several cores); the caller may retry. */
export function isConflict(err: unknown): boolean {
  return storeFailure(err) === 'LEVEL_CONFLICT';
}

/**
 * Batch options for a write computed now but issued later (behind a write queue): on a
 * shared PostgreSQL store it is checked against other cores' changes handed over since
 * now; nothing on level.
 */
export function asOfNow(db: Database): AbstractBatchOptions<string, unknown> | undefined {
  const epoch = (db as unknown as { epoch?: unknown }).epoch;
  return typeof epoch === 'number' ? ({ asOf: epoch } as AbstractBatchOptions<string, unknown>) : undefined;
}

/** The keys (`!sublevel!key`) another core had changed, of a conflict; empty for any other error. */
export function conflictKeys(err: unknown): string[] {
  for (let e = err as { code?: string; keys?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === 'LEVEL_CONFLICT' && Array.isArray(e.keys)) return e.keys.map((k) => (Buffer.isBuffer(k) ? k.toString('utf8') : String(k)));
  }
  return [];
}
