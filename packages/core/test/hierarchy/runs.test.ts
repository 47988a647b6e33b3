import { join } from 'node:path';
import { openDatabase, silentLogger, sublevel, type Database } from '@outpost/common';
import { removeDir, tempDir, waitFor } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { HierRuns } from '../../src/hierarchy/runs.js';
import { HierarchyStore } from '../../src/hierarchy/store.js';
import { LevelJournal } from '../../src/journal-level.js';
import type { Registry } from '../../src/registry.js';
import type { AgentRun, AgentRunState } from '../../src/tasks/model.js';

let dir: string | undefined;
let db: Database | undefined;
let runs: HierRuns | undefined;
afterEach(async () => {
  await runs?.stop();
  await db?.close();
  if (dir) await removeDir(dir);
  runs = db = dir = undefined;
});

const SELF = 'core_child';
const DELAY = 100;

/** A level store with its journal and a HierRuns following it, as a core has them (no tasks module: the test writes agent runs itself). */
async function open(delayMs = DELAY): Promise<{ feed: LevelJournal; agentRuns: ReturnType<typeof sublevel<AgentRun>> }> {
  dir = await tempDir('outpost-hier-runs-');
  db = await openDatabase(join(dir, 'db'));
  const feed = await LevelJournal.open(db, { retentionMs: 3_600_000 });
  const registry = { store: { agents: new Map() } } as unknown as Registry;
  runs = new HierRuns({ selfId: SELF, store: new HierarchyStore(db), feed, registry, tasks: () => undefined, log: silentLogger(), now: () => 1, defaultExpiryMs: 60_000 }, delayMs);
  await runs.start();
  return { feed, agentRuns: sublevel<AgentRun>(db, 'task-agent-runs') };
}

const agentRun = (agent: string, s: AgentRunState, exit?: number): AgentRun => ({ r: 'run_hr_1', a: agent, s, h: { q: 1 }, st: [exit === undefined ? null : { s: s === 'running' ? 'succeeded' : 'failed', n: 0, x: exit }] as AgentRun['st'] });

/** Every `hier-results` write the journal holds, in order: [agent, state, exit]. */
async function resultWrites(feed: LevelJournal): Promise<Array<[string, string, number | undefined]>> {
  const out: Array<[string, string, number | undefined]> = [];
  for (const e of await feed.read(0, 10_000)) {
    for (const op of e.ops) {
      if (!op.key.startsWith('!hier-results!') || op.value === undefined) continue;
      const r = JSON.parse(op.value) as { agent: string; state: string; exit?: number };
      out.push([r.agent, r.state, r.exit]);
    }
  }
  return out;
}

describe('HierRuns', () => {
  it("writes an agent's result at its first state, at running once and at its final state, not at the changes in between", async () => {
    const { feed, agentRuns } = await open();
    const step = async (s: AgentRunState, exit?: number): Promise<void> => {
      await agentRuns.put('run_hr_1!ag_1', agentRun('ag_1', s, exit));
      // Longer than the gathering delay: each change is seen on its own.
      await new Promise((r) => setTimeout(r, DELAY * 3));
    };
    for (const s of ['queued', 'tickled', 'fetched', 'running'] as const) await step(s);
    await step('running', 0);
    await step('failed', 2);
    await waitFor(async () => (await resultWrites(feed)).length >= 3, { timeoutMs: 3_000, what: 'three results' });
    await new Promise((r) => setTimeout(r, DELAY * 3));
    expect(await resultWrites(feed)).toEqual([
      ['ag_1', 'queued', undefined],
      ['ag_1', 'running', undefined],
      ['ag_1', 'failed', 2],
    ]);
  });

  it('gathers a burst into one write, the latest result of each agent', async () => {
    // Gathered for a second: the three writes below fall within it, however loaded the machine.
    const { feed, agentRuns } = await open(1_000);
    const head = feed.head();
    for (const s of ['queued', 'running', 'succeeded'] as const) {
      await agentRuns.batch(Array.from({ length: 50 }, (_, i) => ({ type: 'put' as const, key: `run_hr_1!ag_${i}`, value: agentRun(`ag_${i}`, s, s === 'succeeded' ? 0 : undefined) })));
    }
    await waitFor(async () => (await resultWrites(feed)).length >= 50, { timeoutMs: 5_000, what: 'the results' });
    await new Promise((r) => setTimeout(r, 300));
    const writes = await resultWrites(feed);
    expect(writes).toHaveLength(50);
    expect(new Set(writes.map(([, s]) => s))).toEqual(new Set(['succeeded']));
    // One journal entry holds them all (one page up).
    const entries = (await feed.read(head, 10_000)).filter((e) => e.ops.some((op) => op.key.startsWith('!hier-results!')));
    expect(entries).toHaveLength(1);
  });
});

describe('HierRuns retention', () => {
  it('removes the runs this core started once past the retention (results first, then the record), keeps the others; forget drops the results of a run the parent removed', async () => {
    await open();
    const store = new HierarchyStore(db!);
    const DAY = 86_400_000;
    const hr = (id: string, origin: string, createdAt: number) => ({ id, job: 'j', target: { all: true }, origin, createdAt, expiresMs: DAY });
    const result = (run: string, core: string, agent: string) => store.put(store.results, `${run}!${core}!${agent}`, { core, agent, state: 'succeeded', at: 1 });
    await store.write([
      store.put(store.runs, 'hr_old', hr('hr_old', SELF, 0)),
      store.put(store.runs, 'hr_parents', hr('hr_parents', 'core_parent', 0)),
      store.put(store.runs, 'hr_new', hr('hr_new', SELF, 40 * DAY)),
      result('hr_old', SELF, 'a1'),
      result('hr_old', 'core_below', 'b1'),
      result('hr_parents', SELF, 'a1'),
      result('hr_new', SELF, 'a1'),
    ]);
    const keys = async () => (await store.results.keys().all()).sort();
    // Day 31 with a 30-day retention: hr_old ended on day 1, 30 days ago exactly: kept.
    expect(await runs!.prune(31 * DAY, 30 * DAY)).toBe(0);
    expect(await runs!.prune(31 * DAY + 1, 30 * DAY)).toBe(1);
    expect((await store.list(store.runs)).map(([k]) => k).sort()).toEqual(['hr_new', 'hr_parents']);
    expect(await keys()).toEqual([`hr_new!${SELF}!a1`, `hr_parents!${SELF}!a1`]);
    // The parent's run goes when its deletion comes down: its results here go with it.
    await runs!.forget('hr_parents');
    expect(await keys()).toEqual([`hr_new!${SELF}!a1`]);
  });
});
