import type { AbstractBatchOptions } from 'abstract-level';
import { allValues, sublevel, type BatchOp, type Database, type Sublevel } from '@outpost/common';
import type { AgentRun, JobDef, RunRecord, TaskDef } from './model.js';

/** Largest batch written at once (agent-run records of a big run go in several). */
const CHUNK = 5_000;

/**
 * The tasks module's sublevels: `task-defs`, `task-jobs`, `task-runs`,
 * `task-agent-runs` (`runId!agentId`), `task-output` (`runId!agentId!step!attempt`,
 * kept out of the agent-run records so those stay small) and `task-once`
 * (`key!agentId` → run id) and `task-meta` (`seq`).
 */
export class TaskStore {
  readonly defs: Sublevel<TaskDef>;
  readonly jobs: Sublevel<JobDef>;
  readonly runs: Sublevel<RunRecord>;
  readonly agentRuns: Sublevel<AgentRun>;
  readonly output: Sublevel<string>;
  readonly once: Sublevel<string>;
  /** `seq`: the last run sequence number taken (shared by every core, checked on write). */
  readonly meta: Sublevel<number>;

  constructor(readonly db: Database) {
    this.defs = sublevel(db, 'task-defs');
    this.jobs = sublevel(db, 'task-jobs');
    this.runs = sublevel(db, 'task-runs');
    this.agentRuns = sublevel(db, 'task-agent-runs');
    this.output = sublevel(db, 'task-output');
    this.once = sublevel(db, 'task-once');
    this.meta = sublevel(db, 'task-meta');
  }

  put<V>(s: Sublevel<V>, key: string, value: V): BatchOp {
    return { type: 'put', sublevel: s, key, value };
  }

  del<V>(s: Sublevel<V>, key: string): BatchOp {
    return { type: 'del', sublevel: s, key };
  }

  agentRunOp(ar: AgentRun): BatchOp {
    return this.put(this.agentRuns, `${ar.r}!${ar.a}`, ar);
  }

  /** `options`: e.g. `asOfNow(db)` taken when what is written was read (several cores). */
  async write(ops: BatchOp[], options?: AbstractBatchOptions<string, unknown>): Promise<void> {
    for (let i = 0; i < ops.length; i += CHUNK) await this.db.batch(ops.slice(i, i + CHUNK), options ?? {});
  }

  allDefs(): Promise<TaskDef[]> {
    return allValues(this.defs);
  }

  allJobs(): Promise<JobDef[]> {
    return allValues(this.jobs);
  }

  allRuns(): Promise<RunRecord[]> {
    return allValues(this.runs);
  }

  /** Every agent record of a run, in agent-id order. */
  agentRunsOf(runId: string): Promise<AgentRun[]> {
    return this.agentRuns.values({ gt: `${runId}!`, lt: `${runId}!\xff` }).all();
  }

  /** Stored outputs of one agent in one run: `step!attempt` → text. */
  async outputsOf(runId: string, agentId: string): Promise<Array<[string, string]>> {
    const prefix = `${runId}!${agentId}!`;
    const rows = await this.output.iterator({ gt: prefix, lt: `${prefix}\xff` }).all();
    return rows.map(([k, v]) => [k.slice(prefix.length), v]);
  }

  outputKey(runId: string, agentId: string, step: number, attempt: number): string {
    return `${runId}!${agentId}!${step}!${attempt}`;
  }
}
