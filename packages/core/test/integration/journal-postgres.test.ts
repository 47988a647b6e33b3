import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sublevel } from '@outpost/common';
import { postgresGate, psql, removeDir, startPostgres, tempDir, waitFor, type TestPostgres } from '@outpost/testing';
import { coreConfigSchema } from '../../src/config.js';
import { openCoreDatabase, type CoreDatabase } from '../../src/store-backend.js';

const gate = postgresGate('the change feed on PostgreSQL');
let pg: TestPostgres | undefined;
const dirs: string[] = [];

beforeAll(async () => {
  if (gate.run) pg = await startPostgres({ fsync: false });
}, 120_000);
afterAll(async () => {
  await pg?.destroy();
  for (const d of dirs) await removeDir(d);
});

/** A core's store on `table` with a data dir of its own (as each of several cores has). */
async function opener(table: string): Promise<CoreDatabase> {
  const dir = await tempDir('outpost-journal-pg-');
  dirs.push(dir);
  return openCoreDatabase(coreConfigSchema.parse({ dataDir: dir, store: { kind: 'postgres', url: pg!.url, table } }));
}

describe.runIf(gate.run)('the change feed on PostgreSQL (shared table)', () => {
  it("reads one core's writes on the other: head, onAppend and read() on both openers, contacts included", async () => {
    const a = await opener('feed_two');
    const b = await opener('feed_two');
    try {
      expect(a.feed.head()).toBe(0);
      expect(await a.feed.oldest()).toBe(1);
      const onA: number[] = [];
      const onB: number[] = [];
      a.feed.onAppend((h) => onA.push(h));
      b.feed.onAppend((h) => onB.push(h));
      await a.db.batch([
        { type: 'put', sublevel: sublevel(a.db, 'sites'), key: 's1', value: { name: 'hq' } },
        { type: 'put', sublevel: sublevel(a.db, 'contacts'), key: 'a1', value: 5 },
      ]);
      // Own commit: at once, synchronously after it.
      const first = a.feed.head();
      expect(first).toBeGreaterThan(0);
      expect(onA).toEqual([first]);
      // The other core: when its reader has read it.
      await waitFor(() => b.feed.head() === first);
      expect(onB).toEqual([first]);
      const read = await b.feed.read(0, 10);
      expect(read.map((e) => e.seq)).toEqual([first]);
      expect(read[0]!.ops).toEqual([
        { key: '!sites!s1', value: '{"name":"hq"}' },
        { key: '!contacts!a1', value: '5' },
      ]);
      expect(read[0]!.at).toBeGreaterThan(Date.now() - 60_000);

      await sublevel(b.db, 'sites').del('s1');
      const second = b.feed.head();
      expect(second).toBe(first + 1);
      await waitFor(() => a.feed.head() === second);
      expect(onA).toEqual([first, second]);
      expect((await a.feed.read(first, 10)).map((e) => e.ops)).toEqual([[{ key: '!sites!s1', value: undefined }]]);
      // read() never goes past the head, however many it may return.
      expect(await a.feed.read(second, 10)).toEqual([]);
    } finally {
      await a.db.close();
      await b.db.close();
    }
  });

  it('reads a seq a rolled-back transaction took as an empty entry, and pruned entries not at all (oldest() moves)', async () => {
    const a = await opener('feed_gaps');
    try {
      const sites = sublevel<number>(a.db, 'sites');
      await sites.put('x', 1);
      // A write that took its seq and rolled back leaves a hole in the sequence.
      await psql(pg!, "SELECT nextval('feed_gaps_jseq')");
      await sites.put('y', 2);
      await sites.put('z', 3);
      const head = a.feed.head();
      const entries = await a.feed.read(0, 10);
      expect(entries.map((e) => [e.seq, e.ops.map((o) => o.key)])).toEqual([
        [head - 3, ['!sites!x']],
        [head - 2, []],
        [head - 1, ['!sites!y']],
        [head, ['!sites!z']],
      ]);
      expect((await a.feed.read(0, 2)).map((e) => e.seq)).toEqual([head - 3, head - 2]);
      // Retention deleted the first two entries: a reader behind them gets what is kept and oldest() says so.
      await psql(pg!, `DELETE FROM feed_gaps_journal WHERE seq <= ${head - 2}`);
      expect(await a.feed.oldest()).toBe(head - 1);
      expect((await a.feed.read(0, 10)).map((e) => e.seq)).toEqual([head - 1, head]);
    } finally {
      await a.db.close();
    }
  });

  it("dispatch runs the onRemote handlers as another core's change does", async () => {
    const a = await opener('feed_dispatch');
    const b = await opener('feed_dispatch');
    try {
      const got: Array<[string, unknown]> = [];
      b.onRemote('sites', (key, value) => got.push([key, value]));
      await sublevel(a.db, 'sites').put('s1', { name: 'hq' });
      await waitFor(() => got.length === 1);
      b.dispatch('sites', 's2', { name: 'replicated' });
      expect(got).toEqual([
        ['s1', { name: 'hq' }],
        ['s2', { name: 'replicated' }],
      ]);
    } finally {
      await a.db.close();
      await b.db.close();
    }
  });
});
