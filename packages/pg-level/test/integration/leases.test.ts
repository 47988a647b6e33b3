import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresGate, psql, startPostgres, type TestPostgres } from '@outpost/testing';
import { PgLeases, PgLevel } from '../../src/index.js';

const gate = postgresGate('pg-level leases');
let pg: TestPostgres | undefined;
const dbs: PgLevel[] = [];

beforeAll(async () => {
  if (gate.run) pg = await startPostgres({ fsync: false });
}, 120_000);
afterAll(async () => {
  for (const db of dbs) await db.close();
  await pg?.destroy();
});

/** A holder on its own pool, as each core has. */
async function holder(name: string, ttlMs: number, scope?: string): Promise<PgLeases> {
  const db = new PgLevel({ connectionString: pg!.url, table: 'leases_test_kv', poolSize: 2 });
  await db.open();
  dbs.push(db);
  return new PgLeases(db, { holder: name, ttlMs, ...(scope ? { scope } : {}) });
}

describe.runIf(gate.run)('PgLeases', () => {
  it('gives a lease to one holder; when it stops renewing another takes it within the ttl with a larger token, and the old holder is told it lost it', async () => {
    const ttl = 1_500;
    const a = await holder('core-a', ttl);
    const b = await holder('core-b', ttl);
    const first = await a.renew(['sweep', 'expiry']);
    expect([...first.keys()].sort()).toEqual(['expiry', 'sweep']);
    const token = first.get('sweep')!;
    expect(await b.renew(['sweep'])).toEqual(new Map());
    expect(await psql(pg!, "SELECT holder FROM outpost_leases WHERE name = 'sweep'")).toBe('core-a');
    // Renewing keeps the lease and the token.
    const stopped = Date.now();
    expect((await a.renew(['sweep', 'expiry'])).get('sweep')).toBe(token);

    // a stops renewing: b keeps trying, and gets it once the ttl has run out, not before.
    let taken: Map<string, number> = new Map();
    while (!taken.has('sweep')) {
      taken = await b.renew(['sweep']);
      if (!taken.has('sweep')) await new Promise((r) => setTimeout(r, 100));
    }
    const after = Date.now() - stopped;
    expect(after).toBeGreaterThanOrEqual(ttl);
    expect(after).toBeLessThan(ttl + 1_500);
    expect(taken.get('sweep')).toBe(token + 1);
    // a comes back: sweep is b's now (not in its answer); expiry nobody took, so it is still a's.
    const back = await a.renew(['sweep', 'expiry']);
    expect(back.has('sweep')).toBe(false);
    expect(back.get('expiry')).toBe(first.get('expiry'));
    expect((await a.list()).find((l) => l.name === 'sweep')).toEqual({ name: 'sweep', holder: 'core-b', token: token + 1, live: true });
  });

  it('hands a released lease over at once', async () => {
    const a = await holder('rel-a', 60_000);
    const b = await holder('rel-b', 60_000);
    const token = (await a.renew(['waves'])).get('waves')!;
    expect(await b.renew(['waves'])).toEqual(new Map());
    await a.release();
    expect((await b.renew(['waves'])).get('waves')).toBe(token + 1);
    // Releasing names another holds changes nothing.
    await a.release(['waves']);
    expect(await a.renew(['waves'])).toEqual(new Map());
  });

  it('gives a free lease to exactly one of several holders taking it at once', async () => {
    const holders = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((h) => holder(`race-${h}`, 60_000)));
    const got = await Promise.all(holders.map((h) => h.renew(['race'])));
    expect(got.filter((m) => m.has('race'))).toHaveLength(1);
  });

  it('keeps the leases of different scopes (estates sharing one server) apart', async () => {
    const a = await holder('estate-a', 60_000, 'core_a');
    const b = await holder('estate-b', 60_000, 'core_b');
    expect([...(await a.renew(['audit'])).keys()]).toEqual(['audit']);
    expect([...(await b.renew(['audit'])).keys()]).toEqual(['audit']);
    expect(await psql(pg!, "SELECT string_agg(name || '=' || holder, ',' ORDER BY name) FROM outpost_leases WHERE name LIKE 'core_%'")).toBe('core_a/audit=estate-a,core_b/audit=estate-b');
    await a.release();
    expect((await b.list()).map((l) => [l.name, l.live])).toEqual([['audit', true]]);
  });
});
