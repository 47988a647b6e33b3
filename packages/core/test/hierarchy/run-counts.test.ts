import { join } from 'node:path';
import { openDatabase, type Database } from '@outpost/common';
import { removeDir, tempDir } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { HierRunRecord, ResultRecord } from '../../src/hierarchy/model.js';
import { RunCounts } from '../../src/hierarchy/run-counts.js';
import { HierarchyStore } from '../../src/hierarchy/store.js';

let dir: string | undefined;
let db: Database | undefined;
afterEach(async () => {
  await db?.close();
  if (dir) await removeDir(dir);
  db = dir = undefined;
});

async function open(): Promise<HierarchyStore> {
  dir = await tempDir('outpost-run-counts-');
  db = await openDatabase(join(dir, 'db'));
  return new HierarchyStore(db);
}

const run = (id: string, createdAt: number): HierRunRecord => ({ id, job: 'j', target: { all: true }, origin: 'core_p', createdAt });
const result = (core: string, agent: string, state: string): ResultRecord => ({ core, agent, state, at: 1 });
/** Writes results as the store does and tells `counts`, as the journal follower does. */
async function write(store: HierarchyStore, counts: RunCounts | undefined, runId: string, rs: ResultRecord[]): Promise<void> {
  await store.write(rs.map((r) => store.put(store.results, `${runId}!${r.core}!${r.agent}`, r)));
  for (const r of rs) counts?.note(`${runId}!${r.core}!${r.agent}`, JSON.stringify(r));
}

describe('RunCounts', () => {
  it('counts a new run by state and by core as results are written, moving an agent from one state to another', async () => {
    const store = await open();
    const counts = new RunCounts(store);
    counts.track('hr_1');
    await write(store, counts, 'hr_1', [result('core_a', 'ag_1', 'running'), result('core_a', 'ag_2', 'running'), result('core_b', 'ag_3', 'pending')]);
    expect(await counts.tally('hr_1')).toEqual({ counts: { running: 2, pending: 1 }, cores: { core_a: 2, core_b: 1 } });
    await write(store, counts, 'hr_1', [result('core_a', 'ag_1', 'succeeded'), result('core_a', 'ag_2', 'failed'), result('core_b', 'ag_3', 'succeeded')]);
    // The same result twice (a journal entry read again) changes nothing.
    counts.note('hr_1!core_a!ag_1', JSON.stringify(result('core_a', 'ag_1', 'succeeded')));
    expect(await counts.tally('hr_1')).toEqual({ counts: { succeeded: 2, failed: 1 }, cores: { core_a: 2, core_b: 1 } });
    counts.note('hr_1!core_b!ag_3', undefined);
    expect(await counts.tally('hr_1')).toEqual({ counts: { succeeded: 1, failed: 1 }, cores: { core_a: 2 } });
    // Results of another run and malformed records are not counted here.
    counts.note('hr_2!core_a!ag_9', JSON.stringify(result('core_a', 'ag_9', 'succeeded')));
    counts.note('hr_1!core_a!ag_7', '{not json');
    expect((await counts.tally('hr_1')).counts).toEqual({ succeeded: 1, failed: 1 });
  });

  it('rebuilds the newest runs from the store at start, reads an older one when asked, and keeps at most `max` runs', async () => {
    const store = await open();
    await store.write([1, 2, 3].map((n) => store.put(store.runs, `hr_${n}`, run(`hr_${n}`, n))));
    for (const n of [1, 2, 3]) await write(store, undefined, `hr_${n}`, Array.from({ length: n }, (_, i) => result('core_a', `ag_${i}`, 'succeeded')));
    const counts = new RunCounts(store, 2);
    await counts.load();
    expect(counts.size).toBe(2);
    // hr_3 is followed: a result written now counts without reading the store.
    await write(store, counts, 'hr_3', [result('core_b', 'ag_x', 'failed')]);
    expect(await counts.tally('hr_3')).toEqual({ counts: { succeeded: 3, failed: 1 }, cores: { core_a: 3, core_b: 1 } });
    // hr_1 was not loaded (older than the newest two): read when asked, then followed.
    expect(await counts.tally('hr_1')).toEqual({ counts: { succeeded: 1 }, cores: { core_a: 1 } });
    expect(counts.size).toBe(2);
    await write(store, counts, 'hr_1', [result('core_a', 'ag_0', 'failed')]);
    expect((await counts.tally('hr_1')).counts).toEqual({ failed: 1 });
  });

  it('applies results written while a run is read from the store after the read, so none is lost', async () => {
    const store = await open();
    await write(store, undefined, 'hr_1', Array.from({ length: 500 }, (_, i) => result('core_a', `ag_${i}`, 'running')));
    await write(store, undefined, 'hr_1', [result('core_a', 'ag_0', 'succeeded')]);
    const counts = new RunCounts(store);
    const reading = counts.tally('hr_1');
    // Noted while the read is in flight: one the read sees too (counted once), one it cannot see.
    counts.note('hr_1!core_a!ag_0', JSON.stringify(result('core_a', 'ag_0', 'succeeded')));
    counts.note('hr_1!core_b!ag_new', JSON.stringify(result('core_b', 'ag_new', 'succeeded')));
    const [first, again] = await Promise.all([reading, counts.tally('hr_1')]);
    const want = { counts: { running: 499, succeeded: 2 }, cores: { core_a: 500, core_b: 1 } };
    expect(first).toEqual(want);
    expect(again).toEqual(want);
  });
});
