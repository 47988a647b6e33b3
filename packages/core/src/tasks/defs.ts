import { OutpostError } from '@outpost/common';
import type { Clock } from '../registry.js';
import { TaskErrors } from './errors.js';
import type { JobDef, JobStepDef, RunStep, TaskDef, TaskSpec } from './model.js';
import type { TaskStore } from './store.js';

/** Nested jobs deeper than this are refused (and so are cycles). */
const MAX_DEPTH = 8;
/** A flattened job longer than this is refused. */
const MAX_STEPS = 256;

export type TaskInput = Omit<TaskDef, 'createdAt' | 'updatedAt'>;
export type JobInput = Omit<JobDef, 'createdAt' | 'updatedAt'>;

/** Task and job definitions: in memory, written through. */
export class Definitions {
  readonly tasks = new Map<string, TaskDef>();
  readonly jobs = new Map<string, JobDef>();

  constructor(
    private readonly store: TaskStore,
    private readonly clock: Clock,
  ) {}

  async load(): Promise<void> {
    for (const t of await this.store.allDefs()) this.tasks.set(t.name, t);
    for (const j of await this.store.allJobs()) this.jobs.set(j.name, j);
  }

  /** Another core changed a task or job definition. */
  remote(kind: 'task' | 'job', name: string, value: TaskDef | JobDef | undefined): void {
    const map = (kind === 'task' ? this.tasks : this.jobs) as Map<string, TaskDef | JobDef>;
    if (value) map.set(name, value);
    else map.delete(name);
  }

  getTask(name: string): TaskDef {
    const t = this.tasks.get(name);
    if (!t) throw new OutpostError(TaskErrors.TASK_NOT_FOUND, `no task named '${name}'`, { status: 404 });
    return t;
  }

  getJob(name: string): JobDef {
    const j = this.jobs.get(name);
    if (!j) throw new OutpostError(TaskErrors.JOB_NOT_FOUND, `no job named '${name}'`, { status: 404 });
    return j;
  }

  async putTask(input: TaskInput, mode: 'create' | 'replace'): Promise<TaskDef> {
    const old = this.tasks.get(input.name);
    if (mode === 'create' && old) throw new OutpostError(TaskErrors.TASK_EXISTS, `a task named '${input.name}' exists already`, { status: 409 });
    if (mode === 'replace' && !old) this.getTask(input.name);
    const now = this.clock.now();
    const t: TaskDef = { ...input, createdAt: old?.createdAt ?? now, updatedAt: now };
    if (old && (old.kind === 'server') !== (t.kind === 'server')) {
      // A task that moves between the core and the agents must not leave a job mixed.
      this.tasks.set(t.name, t);
      try {
        for (const j of this.jobs.keys()) this.flatten(j);
      } finally {
        this.tasks.set(old.name, old);
      }
    }
    await this.store.write([this.store.put(this.store.defs, t.name, t)]);
    this.tasks.set(t.name, t);
    return t;
  }

  async deleteTask(name: string): Promise<void> {
    this.getTask(name);
    const user = [...this.jobs.values()].find((j) => j.steps.some((s) => s.task === name));
    if (user) throw new OutpostError(TaskErrors.TASK_IN_USE, `task '${name}' is a step of job '${user.name}'`, { status: 409, details: { job: user.name } });
    await this.store.write([this.store.del(this.store.defs, name)]);
    this.tasks.delete(name);
  }

  async putJob(input: JobInput, mode: 'create' | 'replace'): Promise<JobDef> {
    const old = this.jobs.get(input.name);
    if (mode === 'create' && old) throw new OutpostError(TaskErrors.JOB_EXISTS, `a job named '${input.name}' exists already`, { status: 409 });
    if (mode === 'replace' && !old) this.getJob(input.name);
    for (const s of input.steps) {
      if (s.task !== undefined) this.getTask(s.task);
      if (s.job !== undefined) this.getJob(s.job);
    }
    const now = this.clock.now();
    const j: JobDef = { ...input, createdAt: old?.createdAt ?? now, updatedAt: now };
    // Check the flattened job (cycles, depth, length) as if it were stored.
    this.flatten(j.name, new Map([[j.name, j]]));
    await this.store.write([this.store.put(this.store.jobs, j.name, j)]);
    this.jobs.set(j.name, j);
    return j;
  }

  async deleteJob(name: string): Promise<void> {
    this.getJob(name);
    const user = [...this.jobs.values()].find((j) => j.steps.some((s) => s.job === name));
    if (user) throw new OutpostError(TaskErrors.JOB_CYCLE, `job '${name}' is a step of job '${user.name}'`, { status: 409, details: { job: user.name } });
    await this.store.write([this.store.del(this.store.jobs, name)]);
    this.jobs.delete(name);
  }

  /** The job as agents run it: nested jobs inlined, tasks resolved to their specs. */
  flatten(name: string, overrides: Map<string, JobDef> = new Map()): RunStep[] {
    const out: RunStep[] = [];
    const walk = (jobName: string, path: string[]): void => {
      if (path.includes(jobName) || path.length >= MAX_DEPTH) {
        throw new OutpostError(TaskErrors.JOB_CYCLE, `job '${jobName}' nests itself or nests deeper than ${MAX_DEPTH}: ${[...path, jobName].join(' → ')}`, { status: 409 });
      }
      const job = overrides.get(jobName) ?? this.getJob(jobName);
      for (const s of job.steps) {
        if (s.job !== undefined) walk(s.job, [...path, jobName]);
        else out.push(this.#runStep(s));
        if (out.length > MAX_STEPS) throw new OutpostError(TaskErrors.JOB_CYCLE, `job '${name}' has more than ${MAX_STEPS} steps`, { status: 409 });
      }
    };
    walk(name, []);
    const server = out.filter((s) => s.task.kind === 'server').length;
    if (server > 0 && server < out.length) {
      throw new OutpostError(TaskErrors.MIXED_JOB, `job '${name}' mixes server tasks (run by the core) and agent tasks; run them as two jobs`, { status: 409 });
    }
    return out;
  }

  #runStep(s: JobStepDef): RunStep {
    const t = this.getTask(s.task ?? '');
    const spec: TaskSpec = { kind: t.kind, timeoutMs: t.timeoutMs };
    for (const k of ['program', 'args', 'env', 'cwd', 'script', 'interpreter', 'builtin'] as const) {
      if (t[k] !== undefined) (spec as unknown as Record<string, unknown>)[k] = t[k];
    }
    return { name: t.name, task: spec, successCodes: s.successCodes, onFailure: s.onFailure, retries: s.retries };
  }
}
