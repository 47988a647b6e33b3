import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresGate, psql, startPostgres, waitFor, type TestPostgres } from '@outpost/testing';
import { PgLevel, type ChangeEvent } from '../../src/index.js';

const gate = postgresGate('pg-level shared table (journal, versions, conflicts)');
let pg: TestPostgres | undefined;
let n = 0;

beforeAll(async () => {
  if (gate.run) pg = await startPostgres({ fsync: false });
}, 120_000);
afterAll(async () => {
  await pg?.destroy();
});

/** Two openers of one fresh shared table, each recording the changes it is told of. */
async function pair(): Promise<{ table: string; a: PgLevel; b: PgLevel; seen: Map<PgLevel, Map<string, string | undefined>>; close(): Promise<void> }> {
  const table = `shared_${process.pid}_${n++}`;
  const open = async () => {
    const db = new PgLevel({ connectionString: pg!.url, table, shared: true, pollMs: 200, valueEncoding: 'utf8' });
    await db.open();
    return db;
  };
  const a = await open();
  const b = await open();
  const seen = new Map<PgLevel, Map<string, string | undefined>>();
  for (const db of [a, b]) {
    const view = new Map<string, string | undefined>();
    seen.set(db, view);
    db.on('change', (e: ChangeEvent) => {
      for (const op of e.ops) view.set(op.key.toString('utf8'), op.value?.toString('utf8'));
    });
  }
  return { table, a, b, seen, close: async () => void (await Promise.all([a.close(), b.close()])) };
}

describe.runIf(gate.run)('PgLevel shared by several openers', () => {
  it("tells each opener of the other's puts, deletes and clears, in commit order", async () => {
    const { a, b, seen, close } = await pair();
    try {
      await a.put('k1', 'one');
      await waitFor(() => seen.get(b)!.get('k1') === 'one', { timeoutMs: 5_000, what: 'b told of k1' });
      await b.put('k1', 'two');
      await waitFor(() => seen.get(a)!.get('k1') === 'two', { timeoutMs: 5_000, what: 'a told of the change' });
      await a.del('k1');
      await waitFor(() => seen.get(b)!.has('k1') && seen.get(b)!.get('k1') === undefined, { timeoutMs: 5_000, what: 'b told of the delete' });
      await a.batch([
        { type: 'put', key: 'x1', value: '1' },
        { type: 'put', key: 'x2', value: '2' },
      ]);
      await waitFor(() => seen.get(b)!.get('x2') === '2', { timeoutMs: 5_000, what: 'b told of the batch' });
      await b.clear({ gte: 'x', lt: 'y' });
      await waitFor(() => seen.get(a)!.has('x1') && seen.get(a)!.get('x1') === undefined && seen.get(a)!.get('x2') === undefined, { timeoutMs: 5_000, what: 'a told of the clear' });
      // Nobody is told of its own writes.
      expect(seen.get(a)!.get('k1')).toBe('two');
    } finally {
      await close();
    }
  }, 30_000);

  it('refuses a write over a change this opener has not seen (LEVEL_CONFLICT), hands it the new value, and takes the retry', async () => {
    const { table, a, seen, close } = await pair();
    try {
      await a.put('acct', '100');
      expect(await a.get('acct')).toBe('100');
      // Another writer changed the row without this opener having seen it yet (no journal entry reaches it).
      await psql(pg!, `UPDATE ${table} SET value = convert_to('70', 'UTF8'), ver = ver + 1000 WHERE key = convert_to('acct', 'UTF8')`);
      const err = await a.put('acct', '90').then(
        () => undefined,
        (e: unknown) => e as { code?: string; cause?: { code?: string } },
      );
      expect(err?.code ?? err?.cause?.code).toBe('LEVEL_CONFLICT');
      expect(await psql(pg!, `SELECT convert_from(value, 'UTF8') FROM ${table} WHERE key = convert_to('acct', 'UTF8')`)).toBe('70');
      expect(seen.get(a)!.get('acct')).toBe('70');
      expect(a.sharing.conflicts).toBe(1);
      await a.put('acct', '60');
      expect(await psql(pg!, `SELECT convert_from(value, 'UTF8') FROM ${table} WHERE key = convert_to('acct', 'UTF8')`)).toBe('60');
      // A key this opener never saw must not exist: creating it over another's row is a conflict too.
      await psql(pg!, `INSERT INTO ${table} (key, value, ver) VALUES (convert_to('new', 'UTF8'), convert_to('theirs', 'UTF8'), 5)`);
      const err2 = await a.batch([{ type: 'put', key: 'new', value: 'mine' }]).then(
        () => undefined,
        (e: unknown) => e as { code?: string; cause?: { code?: string } },
      );
      expect(err2?.code ?? err2?.cause?.code).toBe('LEVEL_CONFLICT');
      expect(seen.get(a)!.get('new')).toBe('theirs');
    } finally {
      await close();
    }
  }, 30_000);

  it('two openers writing at once end with one view: every change of the other is applied, none is missed', async () => {
    const { table, a, b, seen, close } = await pair();
    try {
      const writes = async (db: PgLevel, who: string) => {
        for (let i = 0; i < 100; i++) await db.batch([{ type: 'put', key: `${who}-${String(i).padStart(3, '0')}`, value: `${who}${i}` }, { type: 'put', key: `last-${who}`, value: String(i) }]);
      };
      await Promise.all([writes(a, 'a'), writes(b, 'b')]);
      const rows = (await psql(pg!, `SELECT convert_from(key, 'UTF8') || '=' || convert_from(value, 'UTF8') FROM ${table} ORDER BY key`)).split('\n');
      expect(rows).toHaveLength(202);
      await waitFor(() => seen.get(a)!.get('last-b') === '99' && seen.get(b)!.get('last-a') === '99', { timeoutMs: 10_000, what: 'both caught up' });
      for (const [db, other] of [
        [a, 'b'],
        [b, 'a'],
      ] as const) {
        const view = seen.get(db)!;
        for (let i = 0; i < 100; i++) expect(view.get(`${other}-${String(i).padStart(3, '0')}`)).toBe(`${other}${i}`);
      }
      const journal = Number(await psql(pg!, `SELECT count(*) FROM ${table}_journal`));
      expect(journal).toBe(200);
      // Journal order is commit order with no gaps between committed writes.
      expect(await psql(pg!, `SELECT max(seq) - min(seq) + 1 FROM ${table}_journal`)).toBe('200');
    } finally {
      await close();
    }
  }, 60_000);

  it('a new opener starts after the journal it finds and loads the rest by reading', async () => {
    const { table, a, close } = await pair();
    try {
      await a.put('before', '1');
      const c = new PgLevel({ connectionString: pg!.url, table, shared: true, pollMs: 200, valueEncoding: 'utf8' });
      await c.open();
      const told: string[] = [];
      c.on('change', (e: ChangeEvent) => told.push(...e.ops.map((o) => o.key.toString('utf8'))));
      expect(await c.get('before')).toBe('1');
      await a.put('after', '2');
      await waitFor(() => told.includes('after'), { timeoutMs: 5_000, what: 'c told of a later write' });
      expect(told).not.toContain('before');
      await c.put('before', '3');
      await c.close();
    } finally {
      await close();
    }
  }, 30_000);

  it("refuses a write computed before another opener's change was handed over (asOf), though the versions now agree", async () => {
    const { a, b, seen, close } = await pair();
    try {
      await a.put('site', 'v1');
      await waitFor(() => seen.get(b)!.get('site') === 'v1', { timeoutMs: 5_000, what: 'b told of v1' });
      // A computes a change from what it holds now (v1)...
      const asOf = a.epoch;
      // ...meanwhile B changes the record and A is told (its memory and version move on).
      await b.put('site', 'v2');
      await waitFor(() => seen.get(a)!.get('site') === 'v2', { timeoutMs: 5_000, what: 'a told of v2' });
      // A's write, computed from v1 and issued now, would silently overwrite v2: refused.
      const err = await a.put('site', 'from-v1', { asOf } as never).then(
        () => undefined,
        (e: unknown) => e as { code?: string; cause?: { code?: string } },
      );
      expect(err?.code ?? err?.cause?.code).toBe('LEVEL_CONFLICT');
      expect(await b.get('site')).toBe('v2');
      // Computed now (from v2), the same write goes through.
      await a.put('site', 'from-v2');
      expect(await b.get('site')).toBe('from-v2');
    } finally {
      await close();
    }
  }, 30_000);
});
