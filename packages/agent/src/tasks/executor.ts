import type { Logger } from '@outpost/common';
import type { JournalStore, RunJournal } from './journal.js';
import { runStep, type RunnerOptions } from './runner.js';
import { makeEvent, type StatusEvent } from './types.js';

/** Abort reason for an agent that is stopping (not a cancel: nothing is reported). */
export const SHUTDOWN = 'shutdown';

export interface ExecutorDeps {
  agentId: string;
  journals: JournalStore;
  runner: RunnerOptions;
  /** Queues events for delivery (they are already in the journal). */
  report: (events: StatusEvent[]) => void;
  log: Logger;
}

/**
 * Runs a job's steps in order on this computer, following the job's logic locally: a
 * step succeeds when its exit code is one of its `successCodes`; on failure `stop`
 * skips the rest, `continue` goes on, `retry` runs it again up to `retries` times then
 * stops. Before a step is spawned its start is journaled; a step found started but not
 * finished after a restart is recorded failed (`interrupted`) rather than run again.
 * Every result is journaled, with its status event, before the next step begins.
 */
export async function executeRun(j: RunJournal, d: ExecutorDeps, signal: AbortSignal): Promise<void> {
  const { run } = j;
  const ev = (step: number, attempt: number, state: StatusEvent['state'], extra: Partial<StatusEvent> = {}): StatusEvent =>
    makeEvent({ run: run.id, agent: d.agentId, step, attempt, state, at: Date.now(), ...extra });
  const commit = async (events: StatusEvent[]): Promise<void> => {
    j.outbox.push(...events);
    await d.journals.save(j);
    d.report(events);
  };

  if (j.started && !j.results[j.started.step]) {
    const { step, attempt } = j.started;
    j.results[step] = { state: 'failed', attempt, error: 'interrupted' };
    j.started = undefined;
    await commit([ev(step, attempt, 'failed', { error: 'interrupted', output: 'the agent restarted while this step ran; it was not run again\n' })]);
  }

  let stopped = false;
  for (let i = 0; i < run.steps.length; i++) {
    const step = run.steps[i]!;
    const prior = j.results[i];
    const retryLeft = prior?.state === 'failed' && step.onFailure === 'retry' && prior.attempt < step.retries;
    if (prior && !retryLeft) {
      // Finished before a restart: never run again.
      if (prior.state === 'failed' && step.onFailure !== 'continue') stopped = true;
      continue;
    }
    if (signal.aborted) break;
    if (stopped) {
      j.results[i] = { state: 'skipped', attempt: 0 };
      await commit([ev(i, 0, 'skipped')]);
      continue;
    }
    let attempt = prior ? prior.attempt + 1 : 0;
    for (;;) {
      j.started = { step: i, attempt };
      await commit([ev(i, attempt, 'running')]);
      d.log.info({ run: run.id, job: run.job, step: i, task: step.name, attempt }, 'step started');
      const out = await runStep(step.task, d.runner, signal, `${run.id}-${i}-${attempt}`);
      // The agent is stopping: leave the step journaled as started (a restart records it interrupted).
      if (signal.reason === SHUTDOWN) return;
      if (out.error === 'cancelled') break;
      const ok = out.error === undefined && out.exitCode !== undefined && step.successCodes.includes(out.exitCode);
      const error = out.error ?? (out.exitCode === undefined ? `signal ${out.signal ?? '?'}` : ok ? undefined : 'exit');
      j.results[i] = { state: ok ? 'succeeded' : 'failed', attempt, exitCode: out.exitCode, error };
      d.log.info({ run: run.id, step: i, task: step.name, attempt, result: j.results[i]!.state, exitCode: out.exitCode, error }, 'step finished');
      j.started = undefined;
      await commit([ev(i, attempt, ok ? 'succeeded' : 'failed', { exitCode: out.exitCode, error, output: out.output, truncated: out.truncated || undefined })]);
      if (ok || step.onFailure !== 'retry' || attempt >= step.retries) break;
      attempt++;
    }
    if (signal.aborted) break;
    const r = j.results[i]!;
    if (r.state === 'failed' && step.onFailure !== 'continue') stopped = true;
  }

  if (signal.reason === SHUTDOWN) return;
  if (signal.aborted) {
    j.final = 'cancelled';
    j.started = undefined;
    await commit([ev(-1, 0, 'cancelled', { error: 'cancelled' })]);
    return;
  }
  const failed = j.results.findIndex((r) => r?.state === 'failed');
  j.final = failed < 0 ? 'succeeded' : 'failed';
  const f = failed < 0 ? undefined : j.results[failed]!;
  await commit([ev(-1, 0, j.final, f ? { error: `step ${failed + 1} '${run.steps[failed]!.name}': ${f.error === 'exit' ? `exit ${f.exitCode}` : f.error}` } : {})]);
  d.log.info({ run: run.id, job: run.job, result: j.final }, 'run finished');
}
