import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCapped, type Logger } from '@outpost/common';
import type { Clock } from '../registry.js';
import { TERMINAL, type AgentRun, type RunRecord, type RunStep, type StatusEvent } from './model.js';

/** Abort reason of a core that is stopping: the step stays `running` and is recorded interrupted at the next start. */
const SHUTDOWN = 'shutdown';

export interface ServerTaskHost {
  getRun(id: string): RunRecord | undefined;
  agentRun(runId: string, agentId: string): Promise<AgentRun | undefined>;
  agentName(agentId: string): string | undefined;
  /** Records events exactly as if an agent had reported them. */
  ingest(events: StatusEvent[]): Promise<unknown>;
  /** Marks the agent's work dispatched (the core took it up). */
  dispatched(runId: string, agentId: string, at: number): void;
}

export interface ServerTaskOptions {
  concurrency: number;
  outputCap: number;
  /** Where script files are written while they run. */
  scratchDir: string;
  /** Drain wait after exit (tests shorten it). @default 1000 */
  drainMs?: number;
}

const event = (run: string, agent: string, step: number, attempt: number, state: StatusEvent['state'], at: number, extra: Partial<StatusEvent> = {}): StatusEvent => ({
  id: `${run}:${agent}:${step}:${attempt}:${state}`,
  run,
  agent,
  step,
  attempt,
  state,
  at,
  ...extra,
});

/**
 * Runs server tasks: the steps of a server run, in the core's own process, once per
 * target agent (`concurrency` agents at a time). Each step runs with the rules agents
 * follow (`runCapped`: own process group killed at the timeout, output capped, then the
 * job's logic: success codes, stop / continue / retry) and every result is recorded as
 * the status event an agent would have sent, so `run show` and the per-agent view read
 * the same. The agent-run record is the journal: after a restart a step found
 * `running` is recorded failed (`interrupted`) and not run again, and the job's logic
 * goes on from there.
 */
export class ServerTasks {
  readonly stats = { queued: 0, started: 0, finished: 0, steps: 0 };
  readonly #queue: Array<[string, string]> = [];
  readonly #aborts = new Map<string, Set<AbortController>>();
  #active = 0;
  #stopping = false;
  readonly #idle: Array<() => void> = [];

  constructor(
    private readonly host: ServerTaskHost,
    private readonly options: ServerTaskOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Queues the run's agents (creation, or resuming after a restart). */
  enqueue(runId: string, agents: Iterable<string>): void {
    if (this.#stopping) return;
    for (const a of agents) {
      this.#queue.push([runId, a]);
      this.stats.queued++;
    }
    this.#pump();
  }

  /** The run was cancelled or expired: its running steps are killed (their agents are final already). */
  ended(runId: string): void {
    for (const c of this.#aborts.get(runId) ?? []) c.abort('cancelled');
  }

  get backlog(): number {
    return this.#queue.length + this.#active;
  }

  #pump(): void {
    while (!this.#stopping && this.#active < this.options.concurrency && this.#queue.length > 0) {
      const [run, agent] = this.#queue.shift()!;
      this.#active++;
      void this.#runAgent(run, agent)
        .catch((err: unknown) => this.log.error({ err, run, agent }, 'server task failed'))
        .finally(() => {
          this.#active--;
          if (this.#active === 0) for (const f of this.#idle.splice(0)) f();
          this.#pump();
        });
    }
  }

  async #runAgent(runId: string, agentId: string): Promise<void> {
    const run = this.host.getRun(runId);
    const ar = await this.host.agentRun(runId, agentId);
    if (!run || !ar || TERMINAL.has(ar.s) || run.finishedAt !== undefined) return;
    const ctl = new AbortController();
    let set = this.#aborts.get(runId);
    if (!set) this.#aborts.set(runId, (set = new Set()));
    set.add(ctl);
    try {
      this.stats.started++;
      await this.#execute(run, ar, ctl.signal);
    } finally {
      set.delete(ctl);
      if (set.size === 0) this.#aborts.delete(runId);
    }
  }

  async #execute(run: RunRecord, ar: AgentRun, signal: AbortSignal): Promise<void> {
    const now = (): number => this.clock.now();
    const record = (events: StatusEvent[]): Promise<unknown> => this.host.ingest(events);
    const [r, a] = [run.id, ar.a];
    this.host.dispatched(r, a, now());
    if (ar.h.f === undefined) await record([event(r, a, -1, 0, 'fetched', now(), { via: 'core' })]);

    let stopped = false;
    for (let i = 0; i < run.steps.length; i++) {
      const step = run.steps[i]!;
      let prior = ar.st[i] ?? null;
      if (prior?.s === 'running') {
        // Began before the core stopped: never run twice.
        await record([event(r, a, i, prior.n, 'failed', now(), { error: 'interrupted', output: 'the core restarted while this step ran; it was not run again\n' })]);
        prior = ar.st[i] ?? null;
      }
      const retryLeft = prior?.s === 'failed' && step.onFailure === 'retry' && prior.n < step.retries;
      if (prior && !retryLeft) {
        if (prior.s === 'failed' && step.onFailure !== 'continue') stopped = true;
        continue;
      }
      if (signal.aborted || this.#expired(run)) break;
      if (stopped) {
        await record([event(r, a, i, 0, 'skipped', now())]);
        continue;
      }
      let attempt = prior ? prior.n + 1 : 0;
      for (;;) {
        await record([event(r, a, i, attempt, 'running', now())]);
        const out = await this.#runStep(step, run, a, signal, attempt);
        this.stats.steps++;
        if (signal.reason === SHUTDOWN) return;
        if (out.error === 'cancelled') break;
        const ok = out.error === undefined && out.exitCode !== undefined && step.successCodes.includes(out.exitCode);
        const error = out.error ?? (out.exitCode === undefined ? `signal ${out.signal ?? '?'}` : ok ? undefined : 'exit');
        await record([
          event(r, a, i, attempt, ok ? 'succeeded' : 'failed', now(), {
            ...(out.exitCode === undefined ? {} : { exitCode: out.exitCode }),
            ...(error === undefined ? {} : { error }),
            ...(out.output ? { output: out.output } : {}),
            ...(out.truncated ? { truncated: true } : {}),
          }),
        ]);
        if (ok || step.onFailure !== 'retry' || attempt >= step.retries || signal.aborted) break;
        attempt++;
      }
      if (signal.aborted) break;
      if (ar.st[i]?.s === 'failed' && step.onFailure !== 'continue') stopped = true;
    }
    if (signal.reason === SHUTDOWN || signal.aborted || TERMINAL.has(ar.s)) return;
    const failed = ar.st.findIndex((s) => s?.s === 'failed');
    const f = failed < 0 ? undefined : ar.st[failed]!;
    const why = f ? `step ${failed + 1} '${run.steps[failed]!.name}': ${f.e === 'exit' || f.e === undefined ? `exit ${f.x ?? '?'}` : f.e}` : undefined;
    await record([event(r, a, -1, 0, failed < 0 ? 'succeeded' : 'failed', now(), why === undefined ? {} : { error: why })]);
    this.stats.finished++;
  }

  #expired(run: RunRecord): boolean {
    return run.expiresAt <= this.clock.now() || run.cancelledAt !== undefined;
  }

  async #runStep(step: RunStep, run: RunRecord, agentId: string, signal: AbortSignal, attempt: number): Promise<{ exitCode?: number | undefined; error?: string | undefined; signal?: string | undefined; output: string; truncated: boolean }> {
    const t = step.task;
    const env: Record<string, string> = {
      ...t.env,
      OUTPOST_RUN_ID: run.id,
      OUTPOST_JOB: run.job,
      OUTPOST_AGENT_ID: agentId,
      OUTPOST_AGENT_NAME: this.host.agentName(agentId) ?? '',
    };
    let file = t.program ?? '';
    let args = t.args ?? [];
    let script: string | undefined;
    if (t.script !== undefined) {
      await mkdir(this.options.scratchDir, { recursive: true, mode: 0o700 });
      script = join(this.options.scratchDir, `${run.id}-${agentId}-${step.name}-${attempt}`.replace(/[^\w.-]/g, '_'));
      await writeFile(script, t.script, { mode: 0o700 });
      file = t.interpreter ?? 'sh';
      args = [script];
    }
    try {
      return await runCapped(file, args, { cwd: t.cwd, env, timeoutMs: t.timeoutMs, outputCap: this.options.outputCap, signal, drainMs: this.options.drainMs });
    } finally {
      if (script) await rm(script, { force: true }).catch(() => undefined);
    }
  }

  /** Kills running steps (left `running`: recorded interrupted at the next start) and waits for them. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#queue.length = 0;
    for (const set of this.#aborts.values()) for (const c of set) c.abort(SHUTDOWN);
    if (this.#active > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }
}
