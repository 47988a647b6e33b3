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

const options = { batchSize: 3, maxBytes: 1 << 20, retryBase: 10, retryCap: 20, linger: 0 };

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

  it('drops the one event the core rejects as malformed (400) and forwards every other, instead of resending the batch forever', async () => {
    dir = await tempDir('outpost-outbox-');
    db = await openDatabase(dir);
    const store = new TsStore(db);
    const got: StatusEvent[] = [];
    let calls = 0;
    // A core that answers 400 to any batch holding the poisoned event (what the real core's validation does).
    const core: CoreClient = {
      bearer: '',
      async call(_m: string, _p: string, body?: unknown) {
        calls++;
        const events = (body as { events: StatusEvent[] }).events;
        if (events.some((e) => e.agent === 'a5')) throw Object.assign(new Error('invalid request body'), { code: 'TASK_CORE_ERROR', details: { status: 400, coreCode: 'COMMON_VALIDATION' } });
        got.push(...events);
        return { accepted: events.length, refused: 0 };
      },
    };
    const o = new Outbox(store, core, options, silentLogger());
    await o.load();
    o.start();
    await o.add(Array.from({ length: 9 }, (_, i) => ev(i + 1)));
    await waitFor(() => o.stats.pending === 0, { what: 'every event forwarded or dropped', timeoutMs: 10_000 });
    await o.stop();
    expect(got.map((e) => e.agent).sort()).toEqual(['a1', 'a2', 'a3', 'a4', 'a6', 'a7', 'a8', 'a9']);
    expect(o.stats.rejectedByCore).toBe(1);
    // Bounded: the poisoned batch was tried once whole, then its events one by one.
    expect(calls).toBeLessThanOrEqual(3 + 3 + 3);
    expect(await store.outboxGroups.keys().all()).toEqual([]);
  });

  it('gathers events that come in one by one for up to `linger` into one call, and sends a full batch at once', async () => {
    dir = await tempDir('outpost-outbox-');
    db = await openDatabase(dir);
    const store = new TsStore(db);
    const calls: number[] = [];
    const core: CoreClient = {
      bearer: '',
      async call(_m: string, _p: string, body?: unknown) {
        calls.push((body as { events: StatusEvent[] }).events.length);
        return { accepted: 0, refused: 0 };
      },
    };
    /** Six events added 30 ms apart (each its own write), forwarded; returns the sizes of the calls. */
    const trickle = async (linger: number, first: number): Promise<number[]> => {
      calls.length = 0;
      const o = new Outbox(store, core, { ...options, batchSize: 100, linger }, silentLogger());
      await o.load();
      o.start();
      for (let i = 0; i < 6; i++) {
        await o.add([ev(first + i)]);
        await new Promise((r) => setTimeout(r, 30));
      }
      await waitFor(() => o.stats.pending === 0, { what: 'all forwarded', timeoutMs: 10_000 });
      await o.stop();
      return [...calls];
    };
    // Without lingering each event is its own call; with it, one call (or two at a slow turn).
    expect((await trickle(0, 100)).length).toBe(6);
    const gathered = await trickle(1_000, 200);
    expect(gathered.reduce((a, b) => a + b, 0)).toBe(6);
    expect(gathered.length).toBeLessThanOrEqual(2);

    // A full batch does not wait for the linger.
    calls.length = 0;
    const o = new Outbox(store, core, { ...options, batchSize: 3, linger: 60_000 }, silentLogger());
    await o.load();
    o.start();
    await o.add([ev(300), ev(301)]);
    await o.add([ev(302)]);
    await waitFor(() => o.stats.pending === 0, { what: 'the full batch forwarded without lingering', timeoutMs: 5_000 });
    await o.stop();
    expect(calls).toEqual([3]);
  });
});
