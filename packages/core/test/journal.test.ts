import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, sublevel, type Database } from '@outpost/common';
import { prng, removeDir, tempDir, waitFor } from '@outpost/testing';
import { coreConfigSchema } from '../src/config.js';
import { LevelJournal } from '../src/journal-level.js';
import { encodeEntry } from '../src/journal-entry.js';
import { openCoreDatabase, type CoreDatabase } from '../src/store-backend.js';
import type { JournalEntry } from '../src/journal.js';

const dirs: string[] = [];
const open: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  for (const db of open.splice(0)) await db.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await removeDir(d);
});

async function newDir(): Promise<string> {
  const d = await tempDir('outpost-journal-');
  dirs.push(d);
  return d;
}

async function openCore(dir: string): Promise<CoreDatabase> {
  const core = await openCoreDatabase(coreConfigSchema.parse({ dataDir: dir }));
  open.push(core.db);
  return core;
}

async function openRaw(dir: string): Promise<Database> {
  const db = await openDatabase(dir);
  open.push(db);
  return db;
}

/** Every seq from 1 to the last, once, ascending. */
function expectGapless(entries: JournalEntry[], last: number): void {
  expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
}

describe('the change journal on level', () => {
  it('journals puts, dels, batches, chained batches and clears through sublevels, in order, with gapless seqs', async () => {
    const { db, feed } = await openCore(await newDir());
    const agents = sublevel<{ name: string }>(db, 'agents');
    const sites = sublevel<{ name: string }>(db, 'sites');
    await agents.put('a1', { name: 'pc-1' });
    await agents.del('a1');
    await db.batch([
      { type: 'put', sublevel: agents, key: 'a2', value: { name: 'pc-2' } },
      { type: 'put', sublevel: sites, key: 's1', value: { name: 'hq' } },
      { type: 'del', sublevel: agents, key: 'a9' },
    ]);
    await agents.batch([{ type: 'put', key: 'a3', value: { name: 'pc-3' } }]);
    await db.batch().put('a4', { name: 'pc-4' }, { sublevel: agents } as never).write();
    await agents.clear();
    expect(feed.head()).toBe(6);
    const entries = await feed.read(0, 100);
    expectGapless(entries, 6);
    expect(entries.map((e) => e.ops)).toEqual([
      [{ key: '!agents!a1', value: '{"name":"pc-1"}' }],
      [{ key: '!agents!a1', value: undefined }],
      [
        { key: '!agents!a2', value: '{"name":"pc-2"}' },
        { key: '!sites!s1', value: '{"name":"hq"}' },
        { key: '!agents!a9', value: undefined },
      ],
      [{ key: '!agents!a3', value: '{"name":"pc-3"}' }],
      [{ key: '!agents!a4', value: '{"name":"pc-4"}' }],
      // The clear: the keys it found, deleted.
      [
        { key: '!agents!a2', value: undefined },
        { key: '!agents!a3', value: undefined },
        { key: '!agents!a4', value: undefined },
      ],
    ]);
    expect(await agents.keys().all()).toEqual([]);
    expect(await sites.get('s1')).toEqual({ name: 'hq' });
    for (const e of entries) expect(e.at).toBeGreaterThan(Date.now() - 60_000);
    // Reads page: after a cursor, at most `limit`.
    expect((await feed.read(2, 2)).map((e) => e.seq)).toEqual([3, 4]);
    expect(await feed.read(6, 10)).toEqual([]);
    expect(await feed.oldest()).toBe(1);
  });

  it('does not journal contacts and task outputs (local, noisy), alone or in a batch with records', async () => {
    const { db, feed } = await openCore(await newDir());
    const contacts = sublevel<number>(db, 'contacts');
    const outputs = sublevel<string>(db, 'task-output');
    const runs = sublevel<{ id: string }>(db, 'runs');
    await contacts.put('a1', 1);
    await outputs.put('r1!a1', 'hello');
    await contacts.del('a1');
    expect(feed.head()).toBe(0);
    await db.batch([
      { type: 'put', sublevel: contacts, key: 'a2', value: 2 },
      { type: 'put', sublevel: runs, key: 'r1', value: { id: 'r1' } },
      { type: 'put', sublevel: outputs, key: 'r1!a2', value: 'out' },
    ]);
    await outputs.clear();
    expect(feed.head()).toBe(1);
    expect((await feed.read(0, 10)).map((e) => e.ops)).toEqual([[{ key: '!runs!r1', value: '{"id":"r1"}' }]]);
    expect(await contacts.get('a2')).toBe(2);
  });

  it('takes 200 batches in flight at once, completing out of order: read() returns them all, gapless, and the head never shows a seq before a gap', async () => {
    const db = await openRaw(await newDir());
    // Each write reaches LevelDB after a random 0-4 ms, so later seqs often commit first.
    const random = prng(7);
    const raw = db as unknown as { _batch(ops: unknown[], options: object): Promise<void> };
    const write = raw._batch.bind(db);
    raw._batch = async (ops, options) => {
      await new Promise((r) => setTimeout(r, Math.floor(random() * 5)));
      return write(ops, options);
    };
    const feed = await LevelJournal.open(db, { retentionMs: 3_600_000 });
    const agents = sublevel<{ i: number }>(db, 'agents');
    const checks: Array<Promise<void>> = [];
    const heads: number[] = [];
    feed.onAppend((head) => {
      heads.push(head);
      // Everything up to the head is readable the moment it moves.
      checks.push(feed.read(0, 1_000).then((entries) => expect(entries.slice(0, head).map((e) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1))));
    });
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        db.batch([
          { type: 'put', sublevel: agents, key: `a${i}`, value: { i } },
          { type: 'put', sublevel: agents, key: `b${i}`, value: { i } },
        ]),
      ),
    );
    await Promise.all(checks);
    expect(feed.head()).toBe(200);
    expect(heads.at(-1)).toBe(200);
    expect(heads).toEqual([...heads].sort((a, b) => a - b));
    const entries = await feed.read(0, 1_000);
    expectGapless(entries, 200);
    // Each batch's entry holds its own two ops.
    for (const e of entries) {
      const i = JSON.parse(e.ops[0]!.value!).i as number;
      expect(e.ops).toEqual([
        { key: `!agents!a${i}`, value: JSON.stringify({ i }) },
        { key: `!agents!b${i}`, value: JSON.stringify({ i }) },
      ]);
    }
    expect(new Set(entries.map((e) => JSON.parse(e.ops[0]!.value!).i)).size).toBe(200);
    // They did complete out of order: the head moved by more than one at times.
    expect(heads.length).toBeLessThan(200);
    feed.close();
  });

  it('gives a write that failed an empty entry, so the head passes its seq and later writes are read', async () => {
    const db = await openRaw(await newDir());
    const raw = db as unknown as { _batch(ops: Array<{ key: string | Uint8Array }>, options: object): Promise<void> };
    const write = raw._batch.bind(db);
    raw._batch = async (ops, options) => {
      if (ops.some((o) => String(o.key) === '!sites!bad')) throw Object.assign(new Error('disk full'), { code: 'LEVEL_IO_ERROR' });
      return write(ops, options);
    };
    const feed = await LevelJournal.open(db, { retentionMs: 3_600_000 });
    const sites = sublevel<number>(db, 'sites');
    await sites.put('a', 1);
    await expect(sites.put('bad', 2)).rejects.toThrow('disk full');
    await sites.put('c', 3);
    await waitFor(() => feed.head() === 3);
    expect((await feed.read(0, 10)).map((e) => [e.seq, e.ops.map((o) => o.key)])).toEqual([
      [1, ['!sites!a']],
      [2, []],
      [3, ['!sites!c']],
    ]);
    expect(await sites.get('bad')).toBeUndefined();
    feed.close();
  });

  it('continues the seq after a reopen', async () => {
    const dir = await newDir();
    const a = await openCore(dir);
    await sublevel(a.db, 'sites').put('s1', { name: 'hq' });
    await sublevel(a.db, 'sites').put('s2', { name: 'branch' });
    await a.db.close();
    const b = await openCore(dir);
    expect(b.feed.head()).toBe(2);
    await sublevel(b.db, 'sites').del('s1');
    expect(b.feed.head()).toBe(3);
    const entries = await b.feed.read(0, 10);
    expectGapless(entries, 3);
    expect(entries[2]!.ops).toEqual([{ key: '!sites!s1', value: undefined }]);
  });

  it('writes empty entries at open for the seqs that were in flight when the process died and never committed', async () => {
    const dir = await newDir();
    const raw = await openRaw(dir);
    // As a kill -9 can leave it: seq 1 committed (head 1), then 2 and 4 in flight, only 3 and 5 committed.
    const entry = (h: number, key: string) => encodeEntry({ at: Date.now(), h, ops: [{ key, value: '1' }] });
    await raw.batch(
      [
        { type: 'put', key: '!journal!0000000000000001', value: entry(0, '!sites!a') },
        { type: 'put', key: '!journal!0000000000000003', value: entry(1, '!sites!c') },
        { type: 'put', key: '!journal!0000000000000005', value: entry(1, '!sites!e') },
      ],
      { valueEncoding: 'utf8' },
    );
    const feed = await LevelJournal.open(raw, { retentionMs: 3_600_000 });
    expect(feed.head()).toBe(5);
    const entries = await feed.read(0, 10);
    expectGapless(entries, 5);
    expect(entries.map((e) => e.ops.length)).toEqual([1, 0, 1, 0, 1]);
    await sublevel(raw, 'sites').put('f', 1);
    expect(feed.head()).toBe(6);
    feed.close();
  });

  it('fails a read of an entry the store damaged (CORE_JOURNAL_CORRUPT) rather than skip it', async () => {
    const dir = await newDir();
    const first = await openCore(dir);
    await sublevel(first.db, 'sites').put('a', 1);
    await sublevel(first.db, 'sites').put('b', 2);
    // Entries written since this open are read from memory: damage them after a reopen.
    await first.db.close();
    const { db, feed } = await openCore(dir);
    await db.put('!journal!0000000000000001', 'not an entry', { valueEncoding: 'utf8' });
    await expect(feed.read(0, 10)).rejects.toMatchObject({ code: 'CORE_JOURNAL_CORRUPT', details: { seq: 1 } });
    expect((await feed.read(1, 10)).map((e) => e.seq)).toEqual([2]);
  });

  it('reads the newest entries from memory, the same as level holds them; older ones (past its 64 MiB) from level', async () => {
    const dir = await newDir();
    const { db, feed } = await openCore(dir);
    const blobs = sublevel<string>(db, 'blobs');
    // 40 entries of 2 MiB: the first ones no longer fit in memory.
    for (let i = 0; i < 40; i++) await blobs.batch([{ type: 'put', key: `k${i}`, value: String(i).repeat((2 * 1024 * 1024) / String(i).length) }, { type: 'del', key: `gone${i}` }]);
    const live = await feed.read(0, 100);
    const near = await feed.read(35, 100);
    await db.close();
    const { feed: reopened } = await openCore(dir);
    const stored = await reopened.read(0, 100);
    expectGapless(stored, 40);
    expect(live).toEqual(stored);
    expect(near).toEqual(stored.slice(35));
    expect(near[0]!.ops[1]).toEqual({ key: '!blobs!gone35', value: undefined });
  });

  it('prunes entries older than the retention (at open and on its timer), keeping the head, and oldest() says where it starts', async () => {
    const dir = await newDir();
    const raw = await openRaw(dir);
    let now = 1_000_000;
    const feed = await LevelJournal.open(raw, { retentionMs: 60_000, now: () => now });
    const sites = sublevel<number>(raw, 'sites');
    for (let i = 0; i < 5; i++) await sites.put(`s${i}`, i);
    now += 30_000;
    for (let i = 5; i < 8; i++) await sites.put(`s${i}`, i);
    expect(await feed.oldest()).toBe(1);
    now += 40_000;
    expect(await feed.prune()).toBe(5);
    expect(await feed.oldest()).toBe(6);
    expect((await feed.read(0, 10)).map((e) => e.seq)).toEqual([6, 7, 8]);
    // Everything is old: the head's entry stays (it carries the seq across a restart).
    now += 120_000;
    expect(await feed.prune()).toBe(2);
    expect(await feed.oldest()).toBe(8);
    feed.close();
    await raw.close();
    const again = await openRaw(dir);
    const reopened = await LevelJournal.open(again, { retentionMs: 60_000, now: () => now });
    expect(reopened.head()).toBe(8);
    await sublevel(again, 'sites').put('x', 1);
    expect(reopened.head()).toBe(9);
    expect(await reopened.oldest()).toBe(8);
    reopened.close();
  });

  it('fires onAppend synchronously after each commit until unsubscribed', async () => {
    const { db, feed } = await openCore(await newDir());
    const sites = sublevel<number>(db, 'sites');
    const seen: number[] = [];
    const off = feed.onAppend((head) => seen.push(head));
    const failing = feed.onAppend(() => {
      throw new Error('a listener that throws does not stop the others');
    });
    await sites.put('a', 1);
    expect(seen).toEqual([1]);
    await sites.put('b', 2);
    expect(seen).toEqual([1, 2]);
    off();
    failing();
    await sites.put('c', 3);
    expect(seen).toEqual([1, 2]);
    expect(feed.head()).toBe(3);
  });

  it('keeps onRemote handlers on level and runs them on dispatch only', async () => {
    const core = await openCore(await newDir());
    const got: Array<[string, unknown]> = [];
    core.onRemote('sites', (key, value) => got.push([key, value]));
    await sublevel(core.db, 'sites').put('s1', { name: 'hq' });
    expect(got).toEqual([]);
    core.dispatch('sites', 's2', { name: 'replicated' });
    core.dispatch('agents', 'a1', { name: 'not a sites handler' });
    core.dispatch('sites', 's3', undefined);
    expect(got).toEqual([
      ['s2', { name: 'replicated' }],
      ['s3', undefined],
    ]);
  });
});
