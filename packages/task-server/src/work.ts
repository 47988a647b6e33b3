import type { BatchOp, WorkRun } from '@outpost/common';
import { eventId, type PendingRun, type RunSpec, type StatusEvent, type Via } from './protocol.js';
import type { TsStore, WorkRecord } from './store.js';

const ev = (run: string, agent: string, state: 'tickled' | 'fetched', at: number, via: Via): StatusEvent => ({
  id: eventId({ run, agent, step: -1, attempt: 0, state }),
  run,
  agent,
  step: -1,
  attempt: 0,
  state,
  at,
  via,
});

/**
 * The work this task server holds: signed run specs and, per agent, the runs waiting for
 * it with the agent's ticket (in memory, written through to level). Signatures and
 * tickets are the core's, kept and served as they came. Work leaves when the agent reports the run
 * finished, when the run expires, or when a full sync with the core no longer lists it.
 */
export class WorkBook {
  readonly runs = new Map<string, RunSpec>();
  readonly #byAgent = new Map<string, Map<string, WorkRecord>>();
  #entries = 0;
  /** The latest tickle time among agents that then fetched, and when one last did (ms). */
  #answeredTickle = 0;
  #lastFirstFetch = 0;

  constructor(private readonly store: TsStore) {}

  get entries(): number {
    return this.#entries;
  }

  async load(): Promise<void> {
    for await (const [id, r] of this.store.runs.iterator()) this.runs.set(id, r);
    for await (const [k, w] of this.store.work.iterator()) {
      const [agent, run] = k.split('!') as [string, string];
      this.#put(agent, run, w.f === undefined ? { ...w, m: true } : w);
    }
  }

  #put(agent: string, run: string, w: WorkRecord): boolean {
    let m = this.#byAgent.get(agent);
    if (!m) this.#byAgent.set(agent, (m = new Map()));
    const fresh = !m.has(run);
    if (fresh) this.#entries++;
    m.set(run, w);
    return fresh;
  }

  #drop(agent: string, run: string, ops: BatchOp[]): void {
    const m = this.#byAgent.get(agent);
    if (!m?.delete(run)) return;
    this.#entries--;
    if (m.size === 0) this.#byAgent.delete(agent);
    ops.push(this.store.del(this.store.work, `${agent}!${run}`));
  }

  /**
   * Takes one page of pending work. Returns the agents to wake: those with new work, and
   * those with a run that was cancelled (they stop it and say so).
   */
  async apply(runs: PendingRun[]): Promise<Set<string>> {
    const wake = new Set<string>();
    const ops: BatchOp[] = [];
    for (const r of runs) {
      const spec: RunSpec = {
        id: r.id,
        job: r.job,
        steps: r.steps,
        expiresAt: r.expiresAt,
        nonce: r.nonce,
        sig: r.sig,
        cancelled: r.cancelled,
        ...(r.cancelSig === undefined ? {} : { cancelSig: r.cancelSig }),
      };
      const old = this.runs.get(r.id);
      if (!old || old.cancelled !== spec.cancelled || old.sig !== spec.sig) {
        this.runs.set(r.id, spec);
        ops.push(this.store.put(this.store.runs, r.id, spec));
      }
      if (r.cancelled) {
        // Agents that fetched it are told to stop; the others never need to hear of it.
        for (const [agent, m] of [...this.#byAgent]) {
          const w = m.get(r.id);
          if (!w) continue;
          if (w.f !== undefined || w.m) wake.add(agent);
          else this.#drop(agent, r.id, ops);
        }
        continue;
      }
      r.agents.forEach((a, i) => {
        const k = r.tickets[i]!;
        const w = this.#byAgent.get(a)?.get(r.id);
        if (w) {
          // Work stored before tickets existed (or re-issued): take the core's ticket.
          if (w.k !== k) {
            w.k = k;
            ops.push(this.store.put(this.store.work, `${a}!${r.id}`, { k }));
          }
          return;
        }
        this.#put(a, r.id, { k });
        ops.push(this.store.put(this.store.work, `${a}!${r.id}`, { k }));
        wake.add(a);
      });
    }
    await this.store.write(ops);
    return wake;
  }

  /** After a full sync: drops work the core no longer lists for us. */
  async retainOnly(listed: Map<string, Set<string>>): Promise<void> {
    const ops: BatchOp[] = [];
    for (const [agent, m] of [...this.#byAgent]) {
      for (const run of [...m.keys()]) {
        if (this.runs.get(run)?.cancelled) continue;
        if (!listed.get(run)?.has(agent)) this.#drop(agent, run, ops);
      }
    }
    await this.store.write(ops);
  }

  /** Runs waiting for an agent (not expired) with its ticket, cancelled ones included so it stops them. */
  forAgent(agent: string, now: number): WorkRun[] {
    const m = this.#byAgent.get(agent);
    if (!m) return [];
    const out: WorkRun[] = [];
    for (const [run, w] of m) {
      const spec = this.runs.get(run);
      // Work stored before tickets existed waits for the next full sync to bring its ticket
      // (an agent would refuse it); a cancel needs none.
      if (spec && spec.expiresAt > now && (w.k !== undefined || spec.cancelled)) out.push({ ...spec, ticket: w.k ?? '' });
    }
    return out;
  }

  hasWork(agent: string): boolean {
    return (this.#byAgent.get(agent)?.size ?? 0) > 0;
  }

  /**
   * Agents to tickle again: work not fetched, tickled `maxTickles` times or fewer, last
   * more than `afterMs` ago — and whose tickle looks lost rather than queued: an agent
   * tickled at least `afterMs` later has fetched since (it was overtaken), or no agent
   * has fetched anything for `afterMs`. A big fan-out drains for seconds behind its own
   * fetches; re-tickling the agents still in that queue would only add to it.
   */
  unfetched(now: number, afterMs: number, maxTickles: number): string[] {
    const out: string[] = [];
    const quiet = now - this.#lastFirstFetch >= afterMs;
    const before = Math.min(now - afterMs, quiet ? Number.POSITIVE_INFINITY : this.#answeredTickle - afterMs);
    for (const [agent, m] of this.#byAgent) {
      for (const w of m.values()) {
        if (w.f === undefined && (w.t === undefined || w.t < before) && (w.n ?? 0) <= maxTickles) {
          out.push(agent);
          break;
        }
      }
    }
    return out;
  }

  /** Records a tickle or a fetch (in memory); returns the status events (first time per run only). */
  mark(agent: string, what: 'tickled' | 'fetched', via: Via, now: number): { events: StatusEvent[]; ops: BatchOp[] } {
    const events: StatusEvent[] = [];
    const ops: BatchOp[] = [];
    const m = this.#byAgent.get(agent);
    if (!m) return { events, ops };
    for (const [run, w] of m) {
      const spec = this.runs.get(run);
      if (!spec || spec.cancelled) continue;
      if (what === 'tickled') {
        const first = w.t === undefined;
        w.t = now;
        w.n = (w.n ?? 0) + 1;
        if (first && w.f === undefined) events.push(ev(run, agent, 'tickled', now, via));
        // Tickle times and counts only pace re-tickles: kept in memory, not written (after a
        // restart unfetched work is tickled again, which is what it needs).
        continue;
      } else if (w.f === undefined) {
        // The fetch event is what lasts (outbox); the mark itself only paces re-tickles
        // and says whether a cancel must reach the agent: memory only (see `m`).
        w.f = now;
        this.#answeredTickle = Math.max(this.#answeredTickle, w.t ?? 0);
        this.#lastFirstFetch = now;
        events.push(ev(run, agent, 'fetched', now, via));
      }
    }
    return { events, ops };
  }

  /** The agent reported a run finished (or stopped): its work there is done. */
  finished(agent: string, run: string, ops: BatchOp[]): void {
    this.#drop(agent, run, ops);
  }

  /** Drops expired runs and their work. */
  async prune(now: number): Promise<void> {
    const ops: BatchOp[] = [];
    for (const [id, r] of [...this.runs]) {
      if (r.expiresAt > now) continue;
      for (const [agent, m] of [...this.#byAgent]) if (m.has(id)) this.#drop(agent, id, ops);
      this.runs.delete(id);
      ops.push(this.store.del(this.store.runs, id));
    }
    await this.store.write(ops);
  }
}
