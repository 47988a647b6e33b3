import { openDatabase, type Database } from '@outpost/common';
import { removeDir, tempDir } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { PendingRun } from '../../src/protocol.js';
import { TsStore } from '../../src/store.js';
import { WorkBook } from '../../src/work.js';

let dir: string | undefined;
let db: Database | undefined;
afterEach(async () => {
  await db?.close();
  await removeDir(dir);
  db = undefined;
});

const run = (agents: string[], cancelled = false): PendingRun => ({
  id: 'r1',
  seq: 1,
  job: 'j',
  steps: [{ name: 's' }],
  expiresAt: Date.now() + 60_000,
  nonce: 'n',
  sig: 's',
  cancelled,
  agents,
  tickets: agents.map((a) => `ticket-${a}`),
});

describe('WorkBook', () => {
  it('tells a cancel to agents that fetched the run, drops it for the others, and after a restart tells every agent that may have fetched it', async () => {
    dir = await tempDir('outpost-work-');
    db = await openDatabase(dir);
    const store = new TsStore(db);
    const a = new WorkBook(store);
    expect([...(await a.apply([run(['x', 'y', 'z'])]))].sort()).toEqual(['x', 'y', 'z']);
    expect(a.mark('x', 'fetched', 'udp', 1).events.map((e) => e.state)).toEqual(['fetched']);
    expect(a.mark('x', 'fetched', 'udp', 2).events).toEqual([]);
    // Fetch marks are memory only: a task server that restarts now does not know who fetched.
    const b = new WorkBook(store);
    await b.load();
    expect([...(await a.apply([run([], true)]))]).toEqual(['x']);
    expect(a.hasWork('y')).toBe(false);
    expect([...(await b.apply([run([], true)]))].sort()).toEqual(['x', 'y', 'z']);
  });

  it('tickles again only agents whose tickle looks lost: overtaken by a later one that fetched, or nothing fetched for a while', async () => {
    dir = await tempDir('outpost-work-');
    db = await openDatabase(dir);
    const w = new WorkBook(new TsStore(db));
    await w.apply([run(['a', 'b', 'c', 'd'])]);
    w.mark('a', 'tickled', 'udp', 1_000);
    w.mark('b', 'tickled', 'udp', 1_000);
    w.mark('c', 'tickled', 'udp', 5_000);
    w.mark('d', 'tickled', 'udp', 5_000);
    // Nothing fetched yet, but the last fetch (none) is long ago: all tickled > 3 s ago go again.
    expect(w.unfetched(4_500, 3_000, 2)).toEqual(['a', 'b']);
    // b fetches at 5.1 s: the fan-out is draining; a (tickled with b) is just queued.
    w.mark('b', 'fetched', 'udp', 5_100);
    expect(w.unfetched(5_200, 3_000, 2)).toEqual([]);
    // d, tickled 4 s after a, fetched: a was overtaken, its tickle looks lost; c is queued.
    w.mark('d', 'fetched', 'udp', 6_000);
    expect(w.unfetched(6_100, 3_000, 2)).toEqual(['a']);
    // Quiet for 3 s: c goes again too.
    expect(w.unfetched(9_100, 3_000, 2)).toEqual(['a', 'c']);
  });
});
