import type { PoolClient } from 'pg';

/**
 * Versioned schema migrations, applied in order at open inside one transaction under an
 * advisory lock (several cores opening at once apply each exactly once). Each entry is
 * one version; never edit a released one, append the next.
 */
export const MIGRATIONS: readonly ((table: string) => string)[] = [
  // 1: the key-value table. bytea keys compare bytewise, as LevelDB orders keys.
  (t) => `CREATE TABLE IF NOT EXISTS ${t} (key bytea PRIMARY KEY, value bytea NOT NULL)`,
];

/** A table name we built ourselves (never user text in SQL). */
export function checkTable(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`pg-level: bad table name ${JSON.stringify(name)} (lowercase letters, digits, _; up to 63)`);
  return name;
}

/** Applies the migrations not yet applied to `table`; returns the schema version. */
export async function migrate(client: PoolClient, table: string): Promise<number> {
  await client.query('BEGIN');
  try {
    // One migrator at a time per table, whichever core gets there first.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`outpost-pg-level:${table}`]);
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
