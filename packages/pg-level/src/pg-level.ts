import { AbstractLevel } from 'abstract-level';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Journal } from './journal.js';
import { PgIterator } from './iterator.js';
import { rangeWhere, type RangeOptions } from './range.js';
import { checkTable, migrate } from './schema.js';
import { splitHosts } from './hosts.js';

export interface PgLevelOptions {
  /** A libpq connection string; several hosts with `target_session_attrs=read-write` fail over to the new primary. */
  connectionString: string;
  /** The table of this database. @default 'outpost_kv' */
  table?: string;
  /** Connections at most. @default 10 */
  poolSize?: number;
  /** Rows per iterator page. @default 1000 */
  pageSize?: number;
  /** An idle connection is closed after this long. @default 10000 */
  idleTimeoutMs?: number;
  /**
   * Hold a session advisory lock on the table while open, so a second opener fails with
   * `LEVEL_LOCKED` (as classic-level does for a directory in use). @default false
   */
  exclusive?: boolean;
  /**
   * Several openers (processes, machines) write the table at once. Every write is one
   * transaction that also appends the change to the table's journal, in commit order, and
   * is refused (`LEVEL_CONFLICT`) when a key it writes changed since this opener last saw
   * it; the other openers' writes arrive as `change` events. See the README. @default false
   */
  shared?: boolean;
  /** With `shared`: the keys whose versions are checked on write (the ones kept in memory). @default every key */
  tracks?: (key: Buffer) => boolean;
  /** With `shared`: journal entries older than this are deleted. @default 3600000 (1 h) */
  journalRetentionMs?: number;
  /** With `shared`: how often a dropped journal listener is reconnected. @default 1000 */
  pollMs?: number;
  /** Forwarded to abstract-level (`keyEncoding`, `valueEncoding`). */
  keyEncoding?: string;
  valueEncoding?: string;
}

interface BatchOp {
  type: 'put' | 'del';
  key: Buffer;
  value?: Buffer;
}

/** A change made by another opener (or found on a conflict): `value` undefined for a delete. */
export interface ChangeEvent {
  /** The journal sequence number of the write (the row's version). */
  seq: number;
  ops: Array<{ key: Buffer; value: Buffer | undefined }>;
}

/**
 * With `shared`: a journal seq known committed (so is every seq before it: journal order is
 * commit order), emitted after this opener's own commit and for each entry its journal reader
 * reads (this opener's or another's).
 */
export interface JournalEvent {
  seq: number;
}

/**
 * What this opener knows of a key: the row version it expects (-1: no row), as of which
 * journal seq, and the epoch at which another opener's value of it was last handed over
 * (0: never): a write computed before that epoch was computed from an older value.
 */
interface Known {
  v: number;
  at: number;
  e: number;
}

/** Options a write takes (besides abstract-level's). */
export interface SharedWriteOptions {
  /**
   * With `shared`: the {@link PgLevel.epoch} at which the caller computed the write from
   * its memory, when it calls later (a write queue); by default the epoch of the call.
   */
  asOf?: number;
}

/**
 * An abstract-level database on PostgreSQL: one table `(key bytea, value bytea)`. A batch
 * is one transaction (the last operation on a key wins, as within a LevelDB batch);
 * sublevels, encodings, events and hooks come from abstract-level, so code written
 * against `level` runs unchanged. No implicit snapshots: an iterator pages by key.
 */
export class PgLevel extends AbstractLevel<Buffer | Uint8Array | string, string, unknown> {
  readonly table: string;
  readonly pageSize: number;
  readonly #options: PgLevelOptions;
  #pool: pg.Pool | undefined;
  /** The connection holding the exclusive lock. */
  #lock: pg.Client | undefined;
  /** One URL per host of the connection string, and whether only a primary will do. */
  readonly #hosts: { urls: string[]; readWrite: boolean };
  /** The host the pool is on. */
  #url: string;
  /** A failover in progress (one at a time). */
  #failover: Promise<void> | undefined;
  /** The schema version after open. */
  schemaVersion = 0;
  /** Statements run (batches count once), failed, and the seconds they took in all. */
  readonly counters = { queries: 0, failed: 0, seconds: 0 };

  constructor(options: PgLevelOptions) {
    const { connectionString: _c, table: _t, poolSize: _p, pageSize: _s, idleTimeoutMs: _i, exclusive: _e, shared: _sh, tracks: _tr, journalRetentionMs: _jr, pollMs: _pm, ...levelOptions } = options;
    super(
      { encodings: { buffer: true }, seek: true, permanence: true, createIfMissing: false, errorIfExists: false, implicitSnapshots: false, explicitSnapshots: false, has: false },
      levelOptions as never,
    );
    this.table = checkTable(options.table ?? 'outpost_kv');
    this.pageSize = options.pageSize ?? 1000;
    this.#options = options;
    this.#hosts = splitHosts(options.connectionString);
    this.#url = this.#hosts.urls[0]!;
    this.shared = options.shared ?? false;
    this.#tracks = options.tracks ?? (() => true);
    this.#journal = new Journal(this, options.pollMs ?? 1_000, options.journalRetentionMs ?? 3_600_000);
    if (this.shared) {
      this.on('newListener', (event: string) => {
        if (event === 'change') this.#journal.follow();
      });
    }
  }

  /** Whether several openers share the table (journal, versions, `change` events). */
  readonly shared: boolean;
  readonly #tracks: (key: Buffer) => boolean;
  readonly #journal: Journal;
  /** With `shared`: what this opener knows of each tracked key it read, wrote or applied. */
  readonly #known = new Map<string, Known>();
  /** With `shared`: this opener's name in the journal. */
  readonly origin = `${process.pid}-${randomBytes(6).toString('hex')}`;
  /** Incremented each time other openers' values are handed over (`change`): see {@link SharedWriteOptions}. */
  #epoch = 0;
  get epoch(): number {
    return this.#epoch;
  }

  /** With `shared`: writes refused because a key had changed, and others' changes applied. */
  readonly sharing = { conflicts: 0, applied: 0, lastSeq: 0 };

  /** With `shared`: reads the journal now (others' changes committed so far are emitted before it resolves). */
  async sync(): Promise<void> {
    if (this.shared) await this.#journal.readNow();
  }

  /**
   * Takes a session advisory lock named `name` on a connection of its own (waiting while
   * another opener holds it); resolves with its release. For start-up steps that must not
   * interleave between processes.
   */
  async lock(name: string): Promise<() => Promise<void>>;
  /** With `wait: false`: undefined at once when another opener holds it. */
  async lock(name: string, options: { wait: false }): Promise<(() => Promise<void>) | undefined>;
  async lock(name: string, options: { wait?: boolean } = {}): Promise<(() => Promise<void>) | undefined> {
    const client = new pg.Client({ connectionString: this.#url });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ ok: boolean }>(`SELECT ${options.wait === false ? 'pg_try_advisory_lock' : 'pg_advisory_lock'}(hashtext($1))${options.wait === false ? '' : ' IS NULL'} AS ok`, [`outpost-pg-level:${this.table}:${name}`]);
      if (options.wait === false && !rows[0]?.ok) {
        await client.end().catch(() => undefined);
        return undefined;
      }
    } catch (err) {
      await client.end().catch(() => undefined);
      throw ioError(err);
    }
    return () => client.end().catch(() => undefined);
  }

  /** The connection string of the host the pool is on (for the journal's listener). */
  get url(): string {
    return this.#url;
  }

  /** A row read with its version: what this opener now knows of the key. */
  _seen(key: Buffer, ver: string | number): void {
    if (!this.shared || !this.#tracks(key)) return;
    const v = Number(ver);
    const hex = key.toString('hex');
    this.#known.set(hex, { v, at: v, e: this.#known.get(hex)?.e ?? 0 });
  }

  /**
   * Applies a journal entry of another opener: keys known as of a later seq (a later read
   * or write of this opener) are left alone; the rest are emitted as one `change` event.
   */
  _applyEntry(seq: number, origin: string, keys: Buffer[], vals: Array<Buffer | null>): void {
    this.sharing.lastSeq = seq;
    this.#apply(seq, origin, keys, vals);
    // After its `change`: a journal reader woken by it finds this opener's memory as of the entry.
    this.emit('journal', { seq } satisfies JournalEvent);
  }

  #apply(seq: number, origin: string, keys: Buffer[], vals: Array<Buffer | null>): void {
    if (origin === this.origin) return;
    const ops: ChangeEvent['ops'] = [];
    const epoch = this.#epoch + 1;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const hex = key.toString('hex');
      const k = this.#known.get(hex);
      if (k && k.at >= seq) continue;
      const value = vals[i] ?? undefined;
      if (this.#tracks(key)) this.#known.set(hex, { v: value === undefined ? -1 : seq, at: seq, e: epoch });
      ops.push({ key, value });
    }
    if (ops.length > 0) this.#epoch = epoch;
    if (ops.length === 0) return;
    this.sharing.applied++;
    this.emit('change', { seq, ops } satisfies ChangeEvent);
  }

  /**
   * A pool on the first host that answers and, when read-write is asked for, is not in
   * recovery (a standby): libpq's multi-host rule, which node-postgres lacks.
   */
  async #connectPool(): Promise<{ pool: pg.Pool; url: string }> {
    const errors: string[] = [];
    for (const url of this.#hosts.urls) {
      const pool = new pg.Pool({ connectionString: url, max: this.#options.poolSize ?? 10, idleTimeoutMillis: this.#options.idleTimeoutMs ?? 10_000, allowExitOnIdle: true });
      pool.on('error', () => undefined);
      try {
        if (this.#hosts.readWrite || this.#hosts.urls.length > 1) {
          const { rows } = await pool.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
          if (this.#hosts.readWrite && rows[0]?.standby) throw new Error('a standby (in recovery), not read-write');
        }
        return { pool, url };
      } catch (err) {
        errors.push(`${hostOf(url)}: ${(err as Error).message}`);
        await pool.end().catch(() => undefined);
      }
    }
    throw Object.assign(new Error(`no usable PostgreSQL server: ${errors.join('; ')}`), { code: 'LEVEL_IO_ERROR' });
  }

  /**
   * The server went away or became read-only: move the pool to the host that now answers
   * read-write (a promoted standby), in the background and once at a time. Requests in
   * between fail (the core answers 503) and the next ones use the new pool.
   */
  #moveOn(): void {
    if (this.#failover || !this.#pool || this.#hosts.urls.length < 2) return;
    const old = this.#pool;
    this.#failover = (async () => {
      for (let attempt = 0; this.#pool === old; attempt++) {
        try {
          const { pool, url } = await this.#connectPool();
          if (this.#pool !== old) {
            await pool.end().catch(() => undefined);
            return;
          }
          this.#pool = pool;
          this.#url = url;
          void old.end().catch(() => undefined);
          this.emit('failover', hostOf(url));
          if (this.#options.exclusive) this.#relock();
          return;
        } catch {
          await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** attempt)).unref());
        }
      }
    })().finally(() => (this.#failover = undefined));
  }

  /** The host the store is connected to now (no credentials). */
  get host(): string {
    return hostOf(this.#url);
  }

  get pool(): pg.Pool {
    if (!this.#pool) throw Object.assign(new Error('Database is not open'), { code: 'LEVEL_DATABASE_NOT_OPEN' });
    return this.#pool;
  }

  async query<R extends object>(sql: string, params: unknown[] = []): Promise<R[]> {
    const t0 = performance.now();
    try {
      return (await this.pool.query<R>(sql, params)).rows;
    } catch (err) {
      this.counters.failed++;
      if (isServerGone(err)) this.#moveOn();
      throw ioError(err);
    } finally {
      this.counters.queries++;
      this.counters.seconds += (performance.now() - t0) / 1000;
    }
  }

  /** Connections of the pool (total, idle, callers waiting for one) and whether this opener holds the exclusive lock. */
  poolStats(): { total: number; idle: number; waiting: number; lockHeld: boolean } {
    const p = this.#pool;
    return { total: p?.totalCount ?? 0, idle: p?.idleCount ?? 0, waiting: p?.waitingCount ?? 0, lockHeld: this.#lock !== undefined };
  }

  async _open(): Promise<void> {
    let lock: pg.Client | undefined;
    let pool: pg.Pool | undefined;
    try {
      const picked = await this.#connectPool();
      pool = picked.pool;
      this.#url = picked.url;
      if (this.#options.exclusive) lock = await this.#takeLock();
      const client = await pool.connect();
      try {
        this.schemaVersion = await migrate(client, this.table);
      } finally {
        client.release();
      }
    } catch (err) {
      await lock?.end().catch(() => undefined);
      await pool?.end().catch(() => undefined);
      throw ioError(err);
    }
    this.#pool = pool;
    this.#lock = lock;
    if (this.shared) await this.#journal.start();
  }

  /** A connection holding the table's session advisory lock (LEVEL_LOCKED when another holds it). */
  async #takeLock(): Promise<pg.Client> {
    const lock = new pg.Client({ connectionString: this.#url });
    lock.on('error', () => undefined);
    await lock.connect();
    const { rows } = await lock.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [`outpost-pg-level-open:${this.table}`]);
    if (!rows[0]?.ok) {
      await lock.end().catch(() => undefined);
      throw Object.assign(new Error(`the table ${this.table} is in use by another process`), { code: 'LEVEL_LOCKED' });
    }
    // The lock lives as long as its session: when the server restarts or fails over, take it again.
    lock.once('end', () => {
      if (this.#lock === lock) this.#relock();
    });
    return lock;
  }

  #relocking = false;

  /** Takes the table lock again on the current host (once at a time), after its session ended. */
  #relock(): void {
    this.#lock = undefined;
    if (this.#relocking) return;
    this.#relocking = true;
    const retry = (): void => {
      if (!this.#pool) {
        this.#relocking = false;
        return;
      }
      this.#takeLock().then(
        (lock) => {
          this.#relocking = false;
          if (this.#pool) this.#lock = lock;
          else void lock.end();
        },
        (err: unknown) => {
          // Another process took the table while the server was away: it is no longer ours.
          if ((err as { code?: string }).code === 'LEVEL_LOCKED') {
            this.#relocking = false;
            this.#lost = true;
            this.emit('lock-lost', err);
          } else {
            // The server the lock was on is gone: the pool follows the new primary, and the lock with it.
            if (isServerGone(err)) this.#moveOn();
            setTimeout(retry, 1_000).unref();
          }
        },
      );
    };
    setTimeout(retry, 500).unref();
  }

  async _close(): Promise<void> {
    await this.#journal.stop();
    const pool = this.#pool;
    this.#pool = undefined;
    const lock = this.#lock;
    this.#lock = undefined;
    await lock?.end().catch(() => undefined);
    await pool?.end();
  }

  /** Whether the server answers now (within `timeoutMs`). */
  async ping(timeoutMs = 2_000): Promise<boolean> {
    if (!this.#pool) return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.#pool.query('SELECT 1').then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
      ]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The columns a read selects: with `shared`, the row's version too. */
  get readColumns(): string {
    return this.shared ? 'key, value, ver' : 'key, value';
  }

  async _get(key: Buffer): Promise<Buffer | undefined> {
    const rows = await this.query<{ key: Buffer; value: Buffer; ver?: string }>(`SELECT ${this.readColumns} FROM ${this.table} WHERE key = $1`, [key]);
    const row = rows[0];
    if (row?.ver !== undefined) this._seen(row.key, row.ver);
    return row?.value;
  }

  async _getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    if (keys.length === 0) return [];
    const rows = await this.query<{ key: Buffer; value: Buffer; ver?: string }>(`SELECT ${this.readColumns} FROM ${this.table} WHERE key = ANY($1::bytea[])`, [keys]);
    for (const r of rows) if (r.ver !== undefined) this._seen(r.key, r.ver);
    const found = new Map(rows.map((r) => [r.key.toString('hex'), r.value]));
    return keys.map((k) => found.get(k.toString('hex')));
  }

  /**
   * With `exclusive`, writes need the table lock in hand: while it is being taken again
   * (after the server restarted or failed over) or after another process took the table
   * (`lock-lost`), a write fails (the core answers 503) instead of writing beside the
   * table's new owner.
   */
  #checkOwner(): void {
    if (!this.#options.exclusive || this.#lock !== undefined) return;
    this.counters.failed++;
    throw Object.assign(new Error(this.#lost ? `this process lost the table ${this.table} to another; it takes no more writes` : `the table lock of ${this.table} is being taken again; retry`), { code: 'LEVEL_IO_ERROR' });
  }

  #lost = false;

  async _put(key: Buffer, value: Buffer, options?: SharedWriteOptions): Promise<void> {
    this.#checkOwner();
    if (this.shared) return this._batch([{ type: 'put', key, value }], options);
    await this.query(`INSERT INTO ${this.table} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, [key, value]);
  }

  async _del(key: Buffer, options?: SharedWriteOptions): Promise<void> {
    this.#checkOwner();
    if (this.shared) return this._batch([{ type: 'del', key }], options);
    await this.query(`DELETE FROM ${this.table} WHERE key = $1`, [key]);
  }

  async _batch(operations: BatchOp[], options?: SharedWriteOptions): Promise<void> {
    this.#checkOwner();
    // abstract-level calls this synchronously from batch()/put()/del(): the caller's memory is as of now.
    const asOf = options?.asOf ?? this.#epoch;
    // The batch's effect is the last operation on each key.
    const last = new Map<string, BatchOp>();
    for (const op of operations) last.set(op.key.toString('hex'), op);
    const puts = [...last.values()].filter((o) => o.type === 'put');
    const dels = [...last.values()].filter((o) => o.type === 'del').map((o) => o.key);
    await this.#transaction(async (client, seq) => {
      if (dels.length > 0) await client.query(`DELETE FROM ${this.table} WHERE key = ANY($1::bytea[])`, [dels]);
      if (puts.length > 0) {
        await client.query(
          seq === undefined
            ? `INSERT INTO ${this.table} (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`
            : `INSERT INTO ${this.table} (key, value, ver) SELECT k, v, ${seq} FROM unnest($1::bytea[], $2::bytea[]) AS u(k, v) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, ver = EXCLUDED.ver`,
          [puts.map((p) => p.key), puts.map((p) => p.value!)],
        );
      }
      return [...last.values()].map((o) => ({ key: o.key, value: o.type === 'put' ? o.value! : undefined }));
    }, [...last.values()].map((o) => o.key), asOf);
  }

  /**
   * One write transaction. With `shared`: under the journal's lock (so journal order is
   * commit order), the versions of the tracked keys it writes are checked against what this
   * opener knows (a key it never saw must not exist), the write is stamped with the next
   * journal seq, journalled and notified, all in the same transaction.
   */
  async #transaction(write: (client: pg.PoolClient, seq: number | undefined) => Promise<ChangeEvent['ops']>, checked: Buffer[], asOf = this.#epoch): Promise<void> {
    const t0 = performance.now();
    this.counters.queries++;
    const client = await this.pool.connect().catch((err: unknown) => {
      this.counters.failed++;
      if (isServerGone(err)) this.#moveOn();
      throw ioError(err);
    });
    // Checked out, a client has no error listener: a server that goes away mid-transaction would be an uncaught error.
    const onError = (): void => undefined;
    client.on('error', onError);
    let conflict: Error | undefined;
    try {
      await client.query('BEGIN');
      let seq: number | undefined;
      if (this.shared) {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`outpost-pg-level-journal:${this.table}`]);
        conflict = await this.#check(client, checked.filter((k) => this.#tracks(k)), asOf);
        if (conflict) throw conflict;
        seq = Number((await client.query<{ seq: string }>(`SELECT nextval('${this.table}_jseq') AS seq`)).rows[0]!.seq);
      }
      const ops = await write(client, seq);
      if (seq !== undefined) {
        await client.query(`INSERT INTO ${this.table}_journal (seq, origin, keys, vals) VALUES ($1, $2, $3::bytea[], $4::bytea[])`, [seq, this.origin, ops.map((o) => o.key), ops.map((o) => o.value ?? null)]);
        await client.query('SELECT pg_notify($1, $2)', [this.#journal.channel, String(seq)]);
      }
      await client.query('COMMIT');
      if (seq !== undefined) {
        for (const o of ops) {
          if (!this.#tracks(o.key)) continue;
          const hex = o.key.toString('hex');
          this.#known.set(hex, { v: o.value === undefined ? -1 : seq, at: seq, e: this.#known.get(hex)?.e ?? 0 });
        }
        this.emit('journal', { seq } satisfies JournalEvent);
      }
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (err === conflict) throw err;
      this.counters.failed++;
      if (isServerGone(err)) this.#moveOn();
      throw ioError(err);
    } finally {
      client.removeListener('error', onError);
      client.release();
      this.counters.seconds += (performance.now() - t0) / 1000;
    }
  }

  /**
   * The keys whose row version is not the one this opener expects, or whose value another
   * opener handed over after the write was computed (`asOf`): their current values are
   * emitted as a `change` (so the opener's memory catches up) and the write is refused
   * with `LEVEL_CONFLICT`, naming them; nothing of it was written.
   */
  async #check(client: pg.PoolClient, keys: Buffer[], asOf: number): Promise<Error | undefined> {
    if (keys.length === 0) return undefined;
    const { rows } = await client.query<{ key: Buffer; value: Buffer; ver: string }>(`SELECT key, value, ver FROM ${this.table} WHERE key = ANY($1::bytea[])`, [keys]);
    const rowOf = new Map(rows.map((r) => [r.key.toString('hex'), r]));
    const stale: ChangeEvent['ops'] = [];
    let now: number | undefined;
    for (const key of keys) {
      const hex = key.toString('hex');
      const row = rowOf.get(hex);
      const current = row ? Number(row.ver) : -1;
      const k = this.#known.get(hex);
      if ((k?.v ?? -1) === current && (k?.e ?? 0) <= asOf) continue;
      now ??= Number((await client.query<{ v: string }>(`SELECT last_value AS v FROM ${this.table}_jseq`)).rows[0]!.v);
      stale.push({ key, value: row?.value });
    }
    if (stale.length === 0) return undefined;
    const epoch = ++this.#epoch;
    for (const s of stale) {
      const row = rowOf.get(s.key.toString('hex'));
      this.#known.set(s.key.toString('hex'), { v: row ? Number(row.ver) : -1, at: row ? Number(row.ver) : now!, e: epoch });
    }
    this.sharing.conflicts++;
    this.emit('change', { seq: now!, ops: stale } satisfies ChangeEvent);
    return Object.assign(new Error(`another writer changed ${stale.length} of the keys this write read (e.g. ${JSON.stringify(stale[0]!.key.toString('utf8').slice(0, 80))}); this opener now has their new values: retry`), {
      code: 'LEVEL_CONFLICT',
      keys: stale.map((s) => s.key),
    });
  }

  async _clear(options: RangeOptions & { reverse: boolean; limit: number }): Promise<void> {
    this.#checkOwner();
    const range = rangeWhere(options);
    if (this.shared) {
      // Journalled like any write (the deleted keys, unchecked: a clear takes whatever is there).
      const limit = options.limit < 0 ? '' : ` ORDER BY key ${options.reverse ? 'DESC' : 'ASC'} LIMIT ${Math.floor(options.limit)}`;
      await this.#transaction(async (client) => {
        const { rows } = await client.query<{ key: Buffer }>(`DELETE FROM ${this.table} WHERE key IN (SELECT key FROM ${this.table} WHERE ${range.sql}${limit}) RETURNING key`, range.params);
        return rows.map((r) => ({ key: r.key, value: undefined }));
      }, []);
      return;
    }
    if (options.limit < 0) {
      await this.query(`DELETE FROM ${this.table} WHERE ${range.sql}`, range.params);
      return;
    }
    await this.query(
      `DELETE FROM ${this.table} WHERE key IN (SELECT key FROM ${this.table} WHERE ${range.sql} ORDER BY key ${options.reverse ? 'DESC' : 'ASC'} LIMIT ${Math.floor(options.limit)})`,
      range.params,
    );
  }

  _iterator(options: ConstructorParameters<typeof PgIterator>[1]): PgIterator {
    return new PgIterator(this, options);
  }
}

/** The host:port of a URL, for logs (never the password). */
function hostOf(url: string): string {
  return /^postgres(?:ql)?:\/\/(?:[^@/?#]*@)?([^/?#]*)/.exec(url)?.[1] ?? '?';
}

/**
 * Errors that mean this server cannot take the store's writes now: the connection is gone
 * (refused, reset, terminated by a shutdown) or the server is read-only (a standby).
 */
function isServerGone(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', '57P01', '57P02', '57P03', '25006'].includes(code) || code.startsWith('08') || /Connection terminated|connection timeout/i.test((err as Error).message ?? '');
}

/** A PostgreSQL or connection failure as abstract-level's `LEVEL_IO_ERROR`, the cause kept. */
function ioError(err: unknown): Error {
  if ((err as { code?: string }).code?.startsWith('LEVEL_')) return err as Error;
  return Object.assign(new Error((err as Error).message, { cause: err }), { code: 'LEVEL_IO_ERROR' });
}
