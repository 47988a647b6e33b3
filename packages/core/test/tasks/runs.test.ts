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

describe('Runs.ingest with a write that fails', () => {
  it("puts back only its own agents: another ingest of the same run stored meanwhile keeps its count, and the resend finishes the run", async () => {
    h = await startCore();
    const fleet = await enrollFleet(h, 2);
    const [a, b] = fleet.agents.map((x) => x.id) as [string, string];
    db = await openDatabase(join(h.dir, 'runs-under-test'));
    const store = new TaskStore(db);
    const runs = new Runs(store, h.core.registry, { now: () => Date.now() }, silentLogger(), () => undefined, (await loadOrCreateWorkKey(join(h.dir, 'wk'))).key);
    await runs.load();
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
