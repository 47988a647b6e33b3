// What a child writes up about its agents: a summary only when something the parent shows
// changed (record, sites, state, last contact to CONTACT_RESOLUTION), never a rebuild of
// every agent's on each tick.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, silentLogger, type Database } from '@outpost/common';
import { AGENT_SLICES, CONTACT_RESOLUTION, Summaries } from '../../src/hierarchy/summaries.js';
import { HierarchyStore } from '../../src/hierarchy/store.js';
import { cleanup, enrollAgent, newDataDir, startCore, testClock } from '../integration/harness.js';

let db: Database | undefined;
afterEach(async () => {
  await db?.close();
  db = undefined;
  await cleanup();
});

describe("a child's summaries", () => {
  it('writes an agent again only when its record, state or contact (to the resolution) changed; a deleted agent is deleted', async () => {
    // Just after a resolution boundary, so a few minutes stay inside one bucket.
    const clock = testClock(Math.floor(Date.now() / CONTACT_RESOLUTION) * CONTACT_RESOLUTION + 1_000);
    const tc = await startCore({ clock });
    const reg = tc.core.registry;
    const agents = [await enrollAgent(tc, 'pc-1'), await enrollAgent(tc, 'pc-2'), await enrollAgent(tc, 'pc-3')];
    db = await openDatabase(join(await newDataDir(), 'up'));
    const store = new HierarchyStore(db);
    const s = new Summaries({ selfId: 'core_me', name: 'emea', store, registry: reg, packages: () => undefined, replicated: () => false, log: silentLogger(), now: () => clock.now() });
    const up = async (): Promise<Map<string, any>> => new Map(await store.list(store.up, 'core_me!'));
    // A tick checks one agent in AGENT_SLICES: a round of ticks checks each once.
    const round = async (): Promise<number> => {
      let n = 0;
      for (let i = 0; i < AGENT_SLICES; i++) n += await s.tick();
      return n;
    };

    expect(await s.tick()).toBe(4); // three agents and the core
    expect(await round()).toBe(0);
    const first = (await up()).get(`core_me!agent!${agents[0]!.id}`);
    expect(first).toMatchObject({ name: 'pc-1', state: 'poll-only', lastContact: new Date(Math.floor(clock.now() / CONTACT_RESOLUTION) * CONTACT_RESOLUTION).toISOString() });

    // A contact inside the same bucket changes nothing the parent shows.
    clock.advance(60_000);
    for (const a of agents) reg.touch(a.id, 'http');
    expect(await round()).toBe(0);

    // A changed record (a new object in the registry) is written again, the others are not.
    const rec = reg.store.agents.get(agents[1]!.id)!;
    reg.store.agents.set(rec.id, { ...rec, os: 'Linux 6.12' });
    expect(await round()).toBe(1);
    expect((await up()).get(`core_me!agent!${rec.id}`).os).toBe('Linux 6.12');

    // The next bucket: a contact moves lastContact.
    clock.advance(CONTACT_RESOLUTION);
    reg.touch(agents[0]!.id, 'http');
    expect(await round()).toBe(1);
    // And the next: silence past the offline window (15 min by default) turns the others offline.
    clock.advance(CONTACT_RESOLUTION);
    reg.touch(agents[0]!.id, 'http');
    expect(await round()).toBe(3); // pc-1's new contact, pc-2 and pc-3 offline
    const now = await up();
    expect(now.get(`core_me!agent!${agents[0]!.id}`).state).toBe('poll-only');
    expect(now.get(`core_me!agent!${agents[2]!.id}`).state).toBe('offline');

    // A deleted agent's summary goes (and the core's count with it).
    expect((await tc.call('DELETE', `/agents/${agents[2]!.id}`)).status).toBe(204);
    expect(await round()).toBe(2);
    expect((await up()).has(`core_me!agent!${agents[2]!.id}`)).toBe(false);
    expect((await up()).get('core_me!core!core_me').agents).toBe(2);

    // A new agent goes up at the next tick, whichever slice that tick checks.
    const late = await enrollAgent(tc, 'pc-4');
    expect(await s.tick()).toBe(2); // pc-4 and the core's count
    expect((await up()).get(`core_me!agent!${late.id}`)).toMatchObject({ name: 'pc-4' });
    expect(await round()).toBe(0);
    expect((await tc.call('DELETE', `/agents/${late.id}`)).status).toBe(204);
    expect(await s.tick()).toBe(2); // gone at the next tick too (the count changed)

    // A restart (a new Summaries over the same store) with an agent deleted meanwhile: the first
    // tick compares with what the store holds, deletes that agent's summary, rewrites nothing else.
    expect((await tc.call('DELETE', `/agents/${agents[1]!.id}`)).status).toBe(204);
    const again = new Summaries({ selfId: 'core_me', name: 'emea', store, registry: reg, packages: () => undefined, replicated: () => false, log: silentLogger(), now: () => clock.now() });
    expect(await again.tick()).toBe(2); // pc-2 deleted, the core's count
    expect([...(await up()).keys()].sort()).toEqual([`core_me!agent!${agents[0]!.id}`, 'core_me!core!core_me']);
    expect(await again.tick()).toBe(0);
  });
});
