import { openDatabase, silentLogger, type Database } from '@outpost/common';
import { removeDir, tempDir, waitFor } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { CoreClient } from '../../src/core-client.js';
import { Outbox } from '../../src/outbox.js';
import type { StatusEvent } from '../../src/protocol.js';
import { TsStore } from '../../src/store.js';

let dir: string | undefined;
let db: Database | undefined;
afterEach(async () => {
  await db?.close();
  await removeDir(dir);
  db = undefined;
});

const ev = (i: number): StatusEvent => ({ id: `r:a${i}:0:0:succeeded`, run: 'r', agent: `a${i}`, step: 0, attempt: 0, state: 'succeeded', at: i });

/** A core that refuses while `down`, else records what it was sent. */
function fakeCore(): CoreClient & { down: boolean; got: StatusEvent[] } {
  const c = {
    bearer: '',
    down: true,
    got: [] as StatusEvent[],
    async call(_m: string, _p: string, body?: unknown) {
      if (c.down) throw Object.assign(new Error('down'), { code: 'TASK_CORE_UNREACHABLE' });
      c.got.push(...(body as { events: StatusEvent[] }).events);
      return {};
    },
  };
  return c;
}

const options = { batchSize: 3, maxBytes: 1 << 20, retryBase: 10, retryCap: 20 };

describe('Outbox', () => {
  it('keeps group-committed events across a restart, forwards each once, and deletes the records after the ack', async () => {
    dir = await tempDir('outpost-outbox-');
    db = await openDatabase(dir);
    const store = new TsStore(db);
    // An event stored one per record by an earlier version is picked up too.
    await store.outbox.put(ev(99).id, ev(99));
    const core = fakeCore();
    const a = new Outbox(store, core, options, silentLogger());
    await a.load();
    a.start();
    expect(await Promise.all([a.add([ev(1), ev(2)]), a.add([ev(3), ev(2)])])).toEqual([2, 1]);
    expect(await a.add(Array.from({ length: 5 }, (_, i) => ev(10 + i)))).toBe(5);
    expect(a.stats.pending).toBe(9);
    await a.stop();
    // A few records, not one per event.
    expect((await store.outboxGroups.keys().all()).length).toBeLessThanOrEqual(3);
    expect(await store.outbox.keys().all()).toEqual([]);

    const b = new Outbox(store, core, options, silentLogger());
    await b.load();
    expect(b.stats.pending).toBe(9);
    core.down = false;
    b.start();
    await waitFor(() => b.stats.pending === 0, { what: 'all forwarded' });
    await b.stop();
    expect(core.got.map((e) => e.agent).sort()).toEqual(['a1', 'a10', 'a11', 'a12', 'a13', 'a14', 'a2', 'a3', 'a99']);
    expect(await store.outboxGroups.keys().all()).toEqual([]);
    expect(await b.add([ev(3)])).toBe(0);
  });
});
