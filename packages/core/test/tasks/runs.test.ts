// Runs under a failing store write: what an ingest applied in memory is put back when its
// write fails, and only that. Another ingest of other agents of the same run, stored
// meanwhile, keeps its effect on the run's counts.
import { join } from 'node:path';
import { openDatabase, silentLogger, type BatchOp, type Database } from '@outpost/common';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskStore } from '../../src/tasks/store.js';
import { Runs } from '../../src/tasks/runs.js';
import { loadOrCreateWorkKey } from '../../src/tasks/work-key.js';
import type { RunStep, StatusEvent } from '../../src/tasks/model.js';
import { enrollFleet, startCore, type Harness } from './harness.js';

let h: Harness | undefined;
let db: Database | undefined;
afterEach(async () => {
  await db?.close();
  await h?.close();
  db = undefined;
  h = undefined;
});

const step: RunStep = { name: 'noop', task: { kind: 'command', program: 'true' }, successCodes: [0], onFailure: 'stop', retries: 0 };
/** The agent's run ended (its final state, step -1). */
const done = (run: string, agent: string): StatusEvent => ({ id: `${run}:${agent}:-1:0:succeeded`, run, agent, step: -1, attempt: 0, state: 'succeeded', at: Date.now() });

/**
 * A real core's registry with two enrolled agents, and a Runs over a store of its own (so a
 * test can hold or fail its writes) with `now()` as its clock; `fresh()` is another Runs over
 * the same store (a restart).
 */
async function setup(now: () => number, retentionMs = 0): Promise<{ a: string; b: string; store: TaskStore; runs: Runs; fresh(): Promise<Runs> }> {
  h = await startCore();
  const fleet = await enrollFleet(h, 2);
  const [a, b] = fleet.agents.map((x) => x.id) as [string, string];
  db = await openDatabase(join(h.dir, 'runs-under-test'));
  const store = new TaskStore(db);
  const key = (await loadOrCreateWorkKey(join(h.dir, 'wk'))).key;
  const fresh = async (): Promise<Runs> => {
    const r = new Runs(store, h!.core.registry, { now }, silentLogger(), () => undefined, key, retentionMs);
    await r.load();
    return r;
  };
  return { a, b, store, runs: await fresh(), fresh };
}

describe('Runs.ingest with a write that fails', () => {
  it("puts back only its own agents: another ingest of the same run stored meanwhile keeps its count, and the resend finishes the run", async () => {
    const { a, b, store, runs } = await setup(() => Date.now());
    const { run } = await runs.create({ job: 'j', steps: [step], agents: [a, b], expiresMs: 60_000 });

    // The write of agent a's event waits, then fails; every other write goes through.
    const write = store.write.bind(store);
    let fail: ((err: Error) => void) | undefined;
    store.write = (ops: BatchOp[], options?: Parameters<TaskStore['write']>[1]) => {
      if (fail === undefined && JSON.stringify(ops).includes(a)) return new Promise<void>((_, reject) => (fail = reject));
      return write(ops, options);
    };
    const first = runs.ingest([done(run.id, a)], 'core');
    await expect(runs.ingest([done(run.id, b)], 'core')).resolves.toMatchObject({ accepted: 1, duplicates: 0 });
    expect(runs.getRun(run.id).counts.succeeded).toBe(2);
    fail!(new Error('store away'));
    await expect(first).rejects.toThrow('store away');

    // a is back where it was; b's success stays counted.
    expect(runs.getRun(run.id).counts).toMatchObject({ succeeded: 1, queued: 1 });
    expect(runs.getRun(run.id).finishedAt).toBeUndefined();
    expect((await runs.agentRun(run.id, a))?.s).toBe('queued');

    // The task server sends a's event again: applied (not a duplicate), and the run is finished.
    await expect(runs.ingest([done(run.id, a)], 'core')).resolves.toMatchObject({ accepted: 1, duplicates: 0 });
    expect(runs.getRun(run.id).counts).toMatchObject({ succeeded: 2, queued: 0 });
    expect(runs.getRun(run.id).finishedAt).toBeDefined();
  });
});

describe('Runs retention', () => {
  it('removes a run finished more than the retention ago (its record, agents and outputs) on the tick that expires runs; keeps unfinished and recent ones', async () => {
    let now = Date.now();
    const DAY = 86_400_000;
    const { a, b, store, runs, fresh } = await setup(() => now, 30 * DAY);
    const { run: old } = await runs.create({ job: 'old', steps: [step], agents: [a, b], expiresMs: 60_000 });
    const output: StatusEvent = { id: `${old.id}:${a}:0:0:succeeded`, run: old.id, agent: a, step: 0, attempt: 0, state: 'succeeded', at: now, exitCode: 0, output: 'hello' } as StatusEvent;
    await runs.ingest([output, done(old.id, a), done(old.id, b)], 'core');
    expect(runs.getRun(old.id).finishedAt).toBeDefined();
    expect(await store.output.keys().all()).toHaveLength(1);
    const { run: open } = await runs.create({ job: 'open', steps: [step], agents: [a], expiresMs: 365 * DAY });

    // Within the retention: kept.
    now += 29 * DAY;
    await runs.tick(true);
    expect(runs.runs.has(old.id)).toBe(true);
    // Past it, but on a core that does not hold the lease: kept.
    now += 2 * DAY;
    await runs.tick(false);
    expect(runs.runs.has(old.id)).toBe(true);
    // Past it, on the lease holder: gone, with every record of it; the unfinished run stays.
    await runs.tick(true);
    expect(runs.runs.has(old.id)).toBe(false);
    expect(await store.runs.get(old.id)).toBeUndefined();
    expect(await store.agentRunsOf(old.id)).toEqual([]);
    expect(await store.output.keys().all()).toEqual([]);
    expect(runs.runs.has(open.id)).toBe(true);
    expect(await store.agentRunsOf(open.id)).toHaveLength(1);
    expect(runs.stats.removed).toBe(1);
    // A restart does not bring it back.
    expect([...(await fresh()).runs.keys()]).toEqual([open.id]);
  });
});
