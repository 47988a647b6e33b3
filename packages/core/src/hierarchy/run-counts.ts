import type { ResultRecord } from './model.js';
import type { HierarchyStore } from './store.js';

/** What a counts-only poll of a hierarchy run answers. */
export interface RunTally {
  /** Agents by state. */
  counts: Record<string, number>;
  /** Agents by core. */
  cores: Record<string, number>;
}

/** One tracked run: every agent's state (an index into `states`), and the sums. */
interface Tracked extends RunTally {
  /** `<core>!<agent>` → index of its state in RunCounts' state table. */
  agents: Map<string, number>;
  /** Results noted while the run is read from the store (applied after, in order). */
  pending: Array<[string, string | undefined]> | undefined;
  /** Settles when the read from the store is done. */
  loaded: Promise<void>;
}

/**
 * The per-run counts of hierarchy results, kept in memory so that a counts-only poll of
 * a run on 75,000 agents (`GET /api/v1/hierarchy/runs/:id?agents=false`) costs no store
 * read. A result changes the counts as it is written (the core's journal: its own
 * agents' results and those its children send up alike); a run is read from the store
 * once, when this core starts (the newest `max` runs) or when it is first asked for, and
 * followed from then on. At most `max` runs are kept (about 100 bytes per agent each);
 * the least recently asked for goes first and is read again if asked for again.
 */
export class RunCounts {
  readonly #runs = new Map<string, Tracked>();
  readonly #states: string[] = [];
  readonly #stateIndex = new Map<string, number>();

  constructor(
    private readonly store: HierarchyStore,
    private readonly max = 8,
  ) {}

  /** How many runs are followed in memory now. */
  get size(): number {
    return this.#runs.size;
  }

  /** Reads the newest runs' results from the store (at start). */
  async load(): Promise<void> {
    const runs = (await this.store.list(this.store.runs)).map(([, r]) => r).sort((a, b) => a.createdAt - b.createdAt);
    for (const r of runs.slice(-this.max)) await this.tally(r.id);
  }

  /** A new run (no results yet): followed from now on without reading the store. */
  track(runId: string): void {
    this.#put(runId, { counts: {}, cores: {}, agents: new Map(), pending: undefined, loaded: Promise.resolve() });
  }

  /** A `hier-results` record was written (key within the sublevel, its JSON text; undefined: deleted). */
  note(key: string, value: string | undefined): void {
    const i = key.indexOf('!');
    if (i < 0) return;
    const t = this.#runs.get(key.slice(0, i));
    if (!t) return;
    const agentKey = key.slice(i + 1);
    if (t.pending) t.pending.push([agentKey, value]);
    else this.#apply(t, agentKey, value);
  }

  /** The run's counts: from memory when followed, else read from the store once and followed from then on. */
  async tally(runId: string): Promise<RunTally> {
    let t = this.#runs.get(runId);
    if (t) {
      // Most recently asked for: last in the map's order.
      this.#runs.delete(runId);
      this.#runs.set(runId, t);
    } else {
      t = { counts: {}, cores: {}, agents: new Map(), pending: [], loaded: Promise.resolve() };
      t.loaded = this.#read(runId, t);
      this.#put(runId, t);
    }
    await t.loaded;
    return { counts: { ...t.counts }, cores: { ...t.cores } };
  }

  async #read(runId: string, t: Tracked): Promise<void> {
    try {
      for (const [k, v] of await this.store.list(this.store.results, `${runId}!`)) this.#set(t, k.slice(runId.length + 1), v.state);
    } catch (err) {
      if (this.#runs.get(runId) === t) this.#runs.delete(runId);
      throw err;
    }
    // What was written while reading: the same as or newer than what the read saw, in journal order.
    const pending = t.pending ?? [];
    t.pending = undefined;
    for (const [k, v] of pending) this.#apply(t, k, v);
  }

  #put(runId: string, t: Tracked): void {
    this.#runs.delete(runId);
    this.#runs.set(runId, t);
    while (this.#runs.size > this.max) this.#runs.delete(this.#runs.keys().next().value!);
  }

  #apply(t: Tracked, agentKey: string, value: string | undefined): void {
    if (value === undefined) {
      this.#set(t, agentKey, undefined);
      return;
    }
    let state: unknown;
    try {
      state = (JSON.parse(value) as Partial<ResultRecord>).state;
    } catch {
      return;
    }
    if (typeof state === 'string') this.#set(t, agentKey, state);
  }

  /** Sets (or, with undefined, removes) one agent's state and moves the sums. */
  #set(t: Tracked, agentKey: string, state: string | undefined): void {
    const before = t.agents.get(agentKey);
    const core = agentKey.slice(0, agentKey.indexOf('!'));
    if (before !== undefined) {
      const s = this.#states[before]!;
      if (s === state) return;
      if (--t.counts[s]! === 0) delete t.counts[s];
      if (state === undefined) {
        t.agents.delete(agentKey);
        if (--t.cores[core]! === 0) delete t.cores[core];
        return;
      }
    } else {
      if (state === undefined) return;
      t.cores[core] = (t.cores[core] ?? 0) + 1;
    }
    let idx = this.#stateIndex.get(state);
    if (idx === undefined) {
      idx = this.#states.push(state) - 1;
      this.#stateIndex.set(state, idx);
    }
    t.agents.set(agentKey, idx);
    t.counts[state] = (t.counts[state] ?? 0) + 1;
  }
}
