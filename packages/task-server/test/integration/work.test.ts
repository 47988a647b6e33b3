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

const run = (agents: string[], cancelled = false): PendingRun => ({ id: 'r1', seq: 1, job: 'j', steps: [{ name: 's' }], expiresAt: Date.now() + 60_000, cancelled, agents });

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
});
