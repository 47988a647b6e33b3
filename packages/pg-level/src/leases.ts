/** What leases need of a database: one statement at a time (a {@link PgLevel}'s `query`). */
export interface LeaseQueries {
  query<R extends object>(sql: string, params?: unknown[]): Promise<R[]>;
}

export interface PgLeasesOptions {
  /** Who holds what this instance takes (unique per process: e.g. core id, pid and a random part). */
  holder: string;
  /** A lease not renewed for this long is free for another holder. @default 6000 */
  ttlMs?: number;
  /**
   * Whose leases these are, when several groups share one server (e.g. the cores of one
   * estate: their store table); rows are named `scope/name`. @default '' (names as given)
   */
  scope?: string;
}

/** The leases one renewal holds, each with its fencing token. */
export type HeldLeases = Map<string, number>;

/** The lease table's name (shared by every core on the server; one row per lease name). */
export const LEASES_TABLE = 'outpost_leases';

/**
 * Leases in PostgreSQL: one row per name (`outpost_leases (name, holder, token,
 * expires_at)`), taken and renewed in one statement on the database's clock, so holders'
 * clocks never matter. A holder keeps a lease while it renews within `ttlMs`; once it
 * stops (killed, stalled, cut off), another takes the lease when it expires. `token`
 * grows by one each time the holder changes: a fencing token a holder can attach to its
 * writes. `release` hands leases over at once (a clean stop).
 */
export class PgLeases {
  readonly holder: string;
  readonly ttlMs: number;
  readonly #prefix: string;
  readonly #db: LeaseQueries;
  #ready: Promise<void> | undefined;

  constructor(db: LeaseQueries, options: PgLeasesOptions) {
    if (options.holder.length === 0 || options.holder.length > 200) throw new Error('PgLeases: holder must be 1 to 200 characters');
    this.#db = db;
    this.holder = options.holder;
    this.ttlMs = options.ttlMs ?? 6_000;
    this.#prefix = options.scope ? `${options.scope}/` : '';
  }

  #row(name: string): string {
    return this.#prefix + name;
  }

  #unrow(row: string): string {
    return row.slice(this.#prefix.length);
  }

  /**
   * Creates the table on first use, once whoever gets there first: a DO block is one
   * transaction, and the transaction-scoped advisory lock orders concurrent creators.
   */
  #table(): Promise<void> {
    this.#ready ??= this.#db
      .query(
        `DO $$ BEGIN
           PERFORM pg_advisory_xact_lock(hashtext('outpost-pg-level:leases'));
           CREATE TABLE IF NOT EXISTS ${LEASES_TABLE} (name text PRIMARY KEY, holder text, token bigint NOT NULL DEFAULT 1, expires_at timestamptz NOT NULL);
         END $$`,
      )
      .then(
        () => undefined,
        (err: unknown) => {
          this.#ready = undefined;
          throw err;
        },
      );
    return this.#ready;
  }

  /**
   * Takes or renews `names` in one statement: a name is ours when we hold it already or its
   * holder let it expire. Returns the names held now with their tokens; a name missing
   * from the answer is another holder's (and if we held it before, we lost it).
   */
  async renew(names: readonly string[]): Promise<HeldLeases> {
    if (names.length === 0) return new Map();
    await this.#table();
    const rows = await this.#db.query<{ name: string; token: string }>(
      `INSERT INTO ${LEASES_TABLE} AS l (name, holder, token, expires_at)
         SELECT n, $1, 1, now() + $3 * interval '1 millisecond' FROM unnest($2::text[]) AS n
       ON CONFLICT (name) DO UPDATE
         SET token = CASE WHEN l.holder IS NOT DISTINCT FROM EXCLUDED.holder THEN l.token ELSE l.token + 1 END,
             holder = EXCLUDED.holder,
             expires_at = EXCLUDED.expires_at
         WHERE l.holder = EXCLUDED.holder OR l.expires_at < now()
       RETURNING name, token`,
      [this.holder, names.map((n) => this.#row(n)), this.ttlMs],
    );
    return new Map(rows.map((r) => [this.#unrow(r.name), Number(r.token)]));
  }

  /** Gives up `names` (or all ours) now: the next holder need not wait for them to expire. */
  async release(names?: readonly string[]): Promise<void> {
    await this.#table();
    if (names === undefined) await this.#db.query(`UPDATE ${LEASES_TABLE} SET expires_at = '-infinity' WHERE holder = $1 AND starts_with(name, $2)`, [this.holder, this.#prefix]);
    else await this.#db.query(`UPDATE ${LEASES_TABLE} SET expires_at = '-infinity' WHERE holder = $1 AND name = ANY($2::text[])`, [this.holder, names.map((n) => this.#row(n))]);
  }

  /** Every lease of this scope: who holds it, its token, and whether it is still running (for operators and tests). */
  async list(): Promise<{ name: string; holder: string | null; token: number; live: boolean }[]> {
    await this.#table();
    const rows = await this.#db.query<{ name: string; holder: string | null; token: string; live: boolean }>(
      `SELECT name, holder, token, expires_at >= now() AS live FROM ${LEASES_TABLE} WHERE starts_with(name, $1) ORDER BY name`,
      [this.#prefix],
    );
    return rows.map((r) => ({ ...r, name: this.#unrow(r.name), token: Number(r.token) }));
  }
}
