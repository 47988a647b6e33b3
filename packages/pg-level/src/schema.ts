import type { PoolClient } from 'pg';

/**
 * Versioned schema migrations, applied in order at open inside one transaction under an
 * advisory lock (several processes opening at once apply each exactly once). Each entry is
 * one version; never edit a released one, append the next.
 */
export const MIGRATIONS: readonly ((table: string) => string)[] = [
  // 1: the key-value table. bytea keys compare bytewise, as LevelDB orders keys.
  (t) => `CREATE TABLE IF NOT EXISTS ${t} (key bytea PRIMARY KEY, value bytea NOT NULL)`,
  // 2: several writers. Each row's version is the journal sequence number of the write that
  // made it (0 before this migration); the journal holds every write with its keys and values
  // (NULL for a delete), in commit order, for the other openers to apply.
  (t) =>
    `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS ver bigint NOT NULL DEFAULT 0;
     CREATE SEQUENCE IF NOT EXISTS ${t}_jseq;
     CREATE TABLE IF NOT EXISTS ${t}_journal (seq bigint PRIMARY KEY, origin text NOT NULL, at timestamptz NOT NULL DEFAULT now(), keys bytea[] NOT NULL, vals bytea[] NOT NULL);
     CREATE INDEX IF NOT EXISTS ${t}_journal_at ON ${t}_journal (at)`,
];

/** A table name we built ourselves (never user text in SQL). */
export function checkTable(name: string): string {
  // 50 at most: the journal's table, sequence and index names append up to 11 characters to it (63 in all).
  if (!/^[a-z_][a-z0-9_]{0,49}$/.test(name)) throw new Error(`pg-level: bad table name ${JSON.stringify(name)} (lowercase letters, digits, _; up to 50)`);
  return name;
}

/** Applies the migrations not yet applied to `table`; returns the schema version. */
export async function migrate(client: PoolClient, table: string): Promise<number> {
  await client.query('BEGIN');
  try {
    // One migrator at a time, whichever process gets there first (also for the shared
    // migrations table: two CREATE TABLE IF NOT EXISTS at once can both try to create it).
    await client.query("SELECT pg_advisory_xact_lock(hashtext('outpost-pg-level:migrations'))");
    await client.query('CREATE TABLE IF NOT EXISTS outpost_schema_migrations (tbl text NOT NULL, version int NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tbl, version))');
    const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM outpost_schema_migrations WHERE tbl = $1', [table]);
    let version = rows[0]?.v ?? 0;
    for (; version < MIGRATIONS.length; version++) {
      await client.query(MIGRATIONS[version]!(table));
      await client.query('INSERT INTO outpost_schema_migrations (tbl, version) VALUES ($1, $2)', [table, version + 1]);
    }
    await client.query('COMMIT');
    return version;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
