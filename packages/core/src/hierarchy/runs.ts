import { isOutpostError, type BatchOp, type Logger } from '@outpost/common';
import type { ChangeFeed } from '../journal.js';
import type { Registry } from '../registry.js';
import type { AgentRun } from '../tasks/model.js';
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
}

/**
 * Hierarchy runs on one core: a run started on a parent arrives as a `hier-runs` record;
 * each core it targets starts a local run of the job on its own agents (id derived from
 * the hierarchy run, so a restart never starts it twice) and writes each agent's result
 * as a `hier-results` record, which goes up link by link to the core that started it.
 * Results follow the core's own journal (every change of an agent's run record).
 */
export class HierRuns {
  #cursor = 0;
  #unsubscribe: (() => void) | undefined;
  #busy = false;
  #again = false;
  readonly #written = new Map<string, string>();
  created = 0;

  constructor(private readonly deps: RunsDeps) {}

  /** Starts following the journal; then (re)starts what a crash may have left undone and writes every result once. */
  async start(): Promise<void> {
    this.#cursor = this.deps.feed.head();
    this.#unsubscribe = this.deps.feed.onAppend(() => this.#follow());
    for (const [, hr] of await this.deps.store.list(this.deps.store.runs)) await this.handle(hr);
    const tasks = this.deps.tasks();
    const ops: BatchOp[] = [];
    for (const id of tasks?.runs?.runs.keys() ?? []) {
      if (!id.startsWith('run_hr_')) continue;
      for (const ar of (await tasks!.runs!.agentRuns(id)) ?? []) this.#result(ar, ops);
    }
    await this.deps.store.write(ops);
  }

  stop(): void {
    this.#unsubscribe?.();
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
      const ops: BatchOp[] = [];
      for (const e of entries) {
        for (const op of e.ops) {
          if (op.key.startsWith(RESULTS)) this.deps.counts?.note(op.key.slice(RESULTS.length), op.value);
          if (op.value === undefined || !op.key.startsWith(PREFIX)) continue;
          this.#result(JSON.parse(op.value) as AgentRun, ops);
        }
      }
      await this.deps.store.write(ops);
      this.#cursor = entries[entries.length - 1]!.seq;
    }
  }

  #result(ar: AgentRun, ops: BatchOp[]): void {
    const hr = ar.r.slice(4);
    const steps = ar.st.filter((s) => s !== null);
    const last = steps[steps.length - 1];
    const r: ResultRecord = { core: this.deps.selfId, agent: ar.a, name: this.deps.registry.store.agents.get(ar.a)?.name, state: ar.s, ...(last?.x === undefined ? {} : { exit: last.x }), at: this.deps.now() };
    const key = `${hr}!${this.deps.selfId}!${ar.a}`;
    const sig = `${r.state}:${r.exit ?? ''}`;
    if (this.#written.get(key) === sig) return;
    this.#written.set(key, sig);
    ops.push(this.deps.store.put(this.deps.store.results, key, r));
  }
}
