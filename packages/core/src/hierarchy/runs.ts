import { isOutpostError, type BatchOp, type Logger } from '@outpost/common';
import type { ChangeFeed } from '../journal.js';
import type { Registry } from '../registry.js';
import { TERMINAL, type AgentRun, type AgentRunState } from '../tasks/model.js';
import type { TasksModule } from '../tasks/module.js';
import type { HierRunRecord, ResultRecord } from './model.js';
import type { RunCounts } from './run-counts.js';
import { HierarchyStore } from './store.js';

/** The local run of hierarchy run `hr_x` on every core is `run_hr_x`: one per core, found again after a crash. */
export const localRunId = (hrId: string): string => `run_${hrId}`;
const PREFIX = '!task-agent-runs!run_hr_';
const RESULTS = '!hier-results!';

export interface RunsDeps {
  selfId: string;
  store: HierarchyStore;
  feed: ChangeFeed;
  registry: Registry;
  tasks(): TasksModule | undefined;
  log: Logger;
  now(): number;
  defaultExpiryMs: number;
  /** Told of every `hier-results` record written on this core (its own and those children send up). */
  counts?: RunCounts | undefined;
  /**
   * Whether this core starts its part of hierarchy runs and writes its agents' results
   * (several cores on one PostgreSQL: the holder of the `hierarchy.child` lease; level:
   * always). Every core keeps the counts.
   */
  writes?(): boolean;
}

/** What of an agent's result a `hier-results` record was written for: its first state, running, its final state. */
const enum Stage {
  First = 1,
  Running = 2,
  Final = 3,
}

function stageOf(state: AgentRunState): Stage {
  return TERMINAL.has(state) ? Stage.Final : state === 'running' ? Stage.Running : Stage.First;
}

/** How long results are gathered before they are written (one record per agent, the latest). @default 200 */
export const RESULT_DELAY_MS = 200;
/** Results written in one batch at most (one journal entry: one up page of about 1 MiB at most). */
const RESULT_BATCH = 5_000;

/**
 * Hierarchy runs on one core: a run started on a parent arrives as a `hier-runs` record;
 * each core it targets starts a local run of the job on its own agents (id derived from
 * the hierarchy run, so a restart never starts it twice) and writes each agent's result
 * as a `hier-results` record, which goes up link by link to the core that started it.
 * Results follow the core's own journal (every change of an agent's run record), but a
 * record is written only when the result reaches a stage the parent shows: its first state
 * (the agent is counted from the start), running (once), and its final state with the exit
 * code; the changes in between (tickled, fetched, a step done) are not. Results are gathered
 * for `RESULT_DELAY_MS` and written together, the latest per agent: a burst is one write,
 * one journal entry, one page up.
 */
export class HierRuns {
  #cursor = 0;
  #unsubscribe: (() => void) | undefined;
  #busy = false;
  #again = false;
  /** Per result key, the stage written (or about to be). */
  readonly #written = new Map<string, Stage>();
  /** Results not written yet, by key (the latest of each). */
  readonly #pending = new Map<string, ResultRecord>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  created = 0;
  /** Result records written (this core's agents). */
  written = 0;

  constructor(
    private readonly deps: RunsDeps,
    private readonly delayMs = RESULT_DELAY_MS,
  ) {}

  /** Starts following the journal; then (re)starts what a crash may have left undone and writes every result once. */
  async start(): Promise<void> {
    this.#cursor = this.deps.feed.head();
    this.#unsubscribe = this.deps.feed.onAppend(() => this.#follow());
    if (this.#writes()) await this.catchUp();
  }

  #writes(): boolean {
    return this.deps.writes?.() ?? true;
  }

  /** (Re)starts this core's part of every hierarchy run and writes every result once: at start, and on taking the work over from another core. */
  async catchUp(): Promise<void> {
    for (const [, hr] of await this.deps.store.list(this.deps.store.runs)) await this.handle(hr);
    const tasks = this.deps.tasks();
    for (const id of tasks?.runs?.runs.keys() ?? []) {
      if (!id.startsWith('run_hr_')) continue;
      for (const ar of (await tasks!.runs!.agentRuns(id)) ?? []) this.#result(ar);
    }
    await this.flush();
  }

  /** Stops following the journal; what is gathered is written. */
  async stop(): Promise<void> {
    this.#unsubscribe?.();
    await this.flush();
  }

  /** Writes the gathered results now (in batches of RESULT_BATCH). */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#flushing = this.#flushing.then(async () => {
      while (this.#pending.size > 0) {
        const ops: BatchOp[] = [];
        for (const [key, r] of this.#pending) {
          ops.push(this.deps.store.put(this.deps.store.results, key, r));
          this.#pending.delete(key);
          if (ops.length >= RESULT_BATCH) break;
        }
        await this.deps.store.write(ops);
        this.written += ops.length;
      }
    });
    return this.#flushing.catch((err: unknown) => this.deps.log.error({ err }, 'writing hierarchy run results failed'));
  }

  /**
   * Removes the hierarchy runs this core started whose last possible finish (creation plus
   * expiry) is more than `retentionMs` ago: every result this core holds, then the record.
   * The record's deletion goes down (each core below then forgets its results, see
   * {@link forget}); returns how many were removed.
   */
  async prune(now: number, retentionMs: number): Promise<number> {
    const { store } = this.deps;
    let n = 0;
    for (const [id, hr] of await store.list(store.runs)) {
      if (hr.origin !== this.deps.selfId || now - (hr.createdAt + (hr.expiresMs ?? this.deps.defaultExpiryMs)) <= retentionMs) continue;
      // The results first, the record last: a crash part-way leaves it to be removed again.
      await this.forget(id);
      await store.write([store.del(store.runs, id)]);
      this.deps.log.info({ run: id, job: hr.job }, 'hierarchy run past its retention removed');
      n++;
    }
    return n;
  }

  /** Deletes every result this core holds of hierarchy run `id` (its record is gone, or about to be). */
  async forget(id: string): Promise<void> {
    const { store } = this.deps;
    const keys = await store.results.keys({ gt: `${id}!`, lt: `${id}!\xff` }).all();
    await store.write(keys.map((k) => store.del(store.results, k)));
    for (const k of keys) this.#written.delete(k);
  }

  /** The agents of this core a hierarchy run targets (none when it is not for this core). */
  targets(hr: HierRunRecord): string[] {
    const t = hr.target;
    const mine = t.all === true || (t.cores ?? []).includes(this.deps.selfId);
    const reg = this.deps.registry;
    if (t.site !== undefined) {
      return [...reg.store.agents.keys()].filter((a) => reg.agentSites(a).includes(t.site!));
    }
    return mine ? [...reg.store.agents.keys()] : [];
  }

  /** Starts this core's part of a hierarchy run (once). */
  async handle(hr: HierRunRecord): Promise<void> {
    const tasks = this.deps.tasks();
    if (!tasks?.runs || !tasks.defs) return;
    const id = localRunId(hr.id);
    if (tasks.runs.runs.has(id)) return;
    const expiresMs = hr.expiresMs ?? this.deps.defaultExpiryMs;
    if (hr.createdAt + expiresMs <= this.deps.now()) return;
    const agents = this.targets(hr);
    if (agents.length === 0) return;
    try {
      const steps = tasks.defs.flatten(tasks.defs.getJob(hr.job).name);
      await tasks.runs.create({ id, job: hr.job, steps, agents, expiresMs: hr.createdAt + expiresMs - this.deps.now() });
      this.created++;
      this.deps.log.info({ run: hr.id, job: hr.job, agents: agents.length, origin: hr.origin }, "started this core's part of a hierarchy run");
    } catch (err) {
      if (!isOutpostError(err)) throw err;
      this.deps.log.warn({ err, run: hr.id, job: hr.job }, "this core's part of a hierarchy run could not start");
    }
  }

  #follow(): void {
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    this.#read()
      .catch((err: unknown) => this.deps.log.error({ err }, 'writing hierarchy run results failed'))
      .finally(() => {
        this.#busy = false;
        if (this.#again) {
          this.#again = false;
          this.#follow();
        }
      });
  }

  async #read(): Promise<void> {
    for (;;) {
      const entries = await this.deps.feed.read(this.#cursor, 1_000);
      if (entries.length === 0) return;
      for (const e of entries) {
        for (const op of e.ops) {
          if (op.key.startsWith(RESULTS)) this.deps.counts?.note(op.key.slice(RESULTS.length), op.value);
          if (op.value === undefined || !op.key.startsWith(PREFIX) || !this.#writes()) continue;
          this.#result(JSON.parse(op.value) as AgentRun);
        }
      }
      this.#cursor = entries[entries.length - 1]!.seq;
      if (this.#pending.size >= RESULT_BATCH) await this.flush();
      else if (this.#pending.size > 0 && !this.#timer) {
        this.#timer = setTimeout(() => void this.flush(), this.delayMs);
        this.#timer.unref();
      }
    }
  }

  /** Gathers an agent's result when it reached a stage not written yet (its first state, running, final). */
  #result(ar: AgentRun): void {
    const key = `${ar.r.slice(4)}!${this.deps.selfId}!${ar.a}`;
    const stage = stageOf(ar.s);
    if ((this.#written.get(key) ?? 0) >= stage) return;
    this.#written.set(key, stage);
    const steps = ar.st.filter((s) => s !== null);
    const last = steps[steps.length - 1];
    this.#pending.set(key, { core: this.deps.selfId, agent: ar.a, name: this.deps.registry.store.agents.get(ar.a)?.name, state: ar.s, ...(last?.x === undefined ? {} : { exit: last.x }), at: this.deps.now() });
  }
}
