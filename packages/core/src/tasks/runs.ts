import { randomBytes } from 'node:crypto';
import {
  cancelBody,
  DerivedKeyCache,
  eventKey,
  newId,
  OutpostError,
  runBody,
  runDigest,
  signWork,
  verifyEventMac,
  workTicket,
  workTicketKey,
  type BatchOp,
  type Logger,
  type PendingPage,
  type PendingRun,
} from '@outpost/common';
import type { Registry, Clock } from '../registry.js';
import { TaskErrors } from './errors.js';
import { emptyCounts, TERMINAL, type AgentRun, type RunRecord, type RunStep, type StatusEvent } from './model.js';
import { reasonNotReached } from './reasons.js';
import { applyEvent, failureKey } from './run-state.js';
import type { TaskStore } from './store.js';
import type { ServerTaskHost } from './server-tasks.js';
import type { WorkKey } from './work-key.js';
import { asOfNow, conflictKeys, isConflict } from '../store-backend.js';

/** A run's agents kept in memory while it is active (sorted ids give stable paging). */
interface Live {
  ids: string[];
  byAgent: Map<string, AgentRun>;
}

export type { PendingPage, PendingRun };

export interface IngestResult {
  accepted: number;
  duplicates: number;
  unknown: number;
  /** Not applied: no or a wrong agent MAC, or a caller the agent's run was not dispatched through. */
  refused: number;
}

/** Why the core did not apply a status event (counted by reason in `stats.refusedBy`). */
export type EventRefusal = 'wrong-task-server' | 'no-mac' | 'bad-mac';

/** Who posts events: a task server (by id) or the core itself (server tasks). */
export type EventSource = { taskServer: string } | 'core';

/** Finished runs stay in memory this long, then are read from the database on demand. */
const EVICT_AFTER_MS = 5 * 60_000;
/** Runs past their retention removed per tick at most. */
const PRUNE_PER_TICK = 20;

/**
 * Runs: creation (one record per agent, written in batches), the pending-work pages
 * task servers fetch, status ingestion (idempotent, counts kept incrementally), cancel
 * and expiry.
 */
export class Runs {
  readonly runs = new Map<string, RunRecord>();
  readonly #live = new Map<string, Live>();
  readonly #dirty = new Set<AgentRun>();
  /**
   * Agent runs an ingest is writing, with its write. Another ingest touching one waits for
   * that write before it applies anything: until it is stored, what it applied in memory may
   * be put back, and a redelivery applied over it meanwhile counted as a duplicate and lost.
   */
  readonly #writing = new Map<AgentRun, Promise<unknown>>();
  #seq = 0;
  readonly stats = { created: 0, removed: 0, events: 0, applied: 0, duplicates: 0, unknown: 0, refused: 0, refusedBy: {} as Partial<Record<EventRefusal, number>>, pendingPages: 0 };
  /** Signed-body digests of the runs (what tickets bind to). */
  readonly #digests = new Map<string, string>();
  readonly #ticketKeys = new DerivedKeyCache(workTicketKey);
  readonly #eventKeys = new DerivedKeyCache(eventKey);
  /** Server runs: the core runs their steps (set by the module to its {@link ServerTasks}). */
  serverHooks: { run(id: string, agents: string[]): void; ended(id: string): void } | undefined;

  constructor(
    private readonly store: TaskStore,
    private readonly registry: Registry,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly tickleWork: (siteServerIds: Iterable<string>) => void,
    private readonly workKey: WorkKey,
    /** Finished runs older than this (from their finish) are removed by the tick that expires runs; 0: kept. */
    private readonly retentionMs = 0,
  ) {}

  /** Signs the run as agents receive it (once per run): sets nonce and sig, remembers its digest. */
  #sign(run: RunRecord): void {
    run.nonce ??= randomBytes(16).toString('base64url');
    const body = runBody({ run: run.id, job: run.job, steps: run.steps, expiresAt: run.expiresAt, nonce: run.nonce })!;
    run.sig ??= signWork(this.workKey.privateKey, body);
    this.#digests.set(run.id, runDigest(body));
  }

  get seq(): number {
    return this.#seq;
  }

  async load(): Promise<void> {
    const unsigned: BatchOp[] = [];
    for (const r of await this.store.allRuns()) {
      // Runs stored before runs were signed are signed now (an agent refuses them unsigned).
      if (r.sig === undefined || r.nonce === undefined) {
        this.#sign(r);
        unsigned.push(this.store.put(this.store.runs, r.id, r));
      } else this.#sign(r);
      if (r.cancelledAt !== undefined && r.cancelSig === undefined) r.cancelSig = signWork(this.workKey.privateKey, cancelBody(r.id));
      this.runs.set(r.id, r);
      this.#seq = Math.max(this.#seq, r.seq);
      // An active run's counts are its agents' states (the record's are written at create, cancel and finish).
      if (r.finishedAt === undefined) recount(r, await this.#liveOf(r));
    }
    this.#seq = Math.max(this.#seq, (await this.store.meta.get('seq')) ?? 0);
    await this.store.write(unsigned);
  }

  // ------------------------------------------------------------ other cores' changes

  /**
   * Another core wrote a run record. A new one is taken with its agents read from the
   * store (their later changes, arriving meanwhile, win over what the read returns); for
   * a known active run its counts stay this core's (they follow the agents' records).
   */
  remoteRun(id: string, run: RunRecord | undefined): void {
    if (!run) {
      this.runs.delete(id);
      this.#live.delete(id);
      return;
    }
    this.#sign(run);
    this.#seq = Math.max(this.#seq, run.seq);
    const mine = this.runs.get(id);
    if (mine && run.finishedAt === undefined) {
      run.counts = mine.counts;
      run.failures = mine.failures;
    }
    this.runs.set(id, run);
    if (run.finishedAt !== undefined || this.#live.has(id)) return;
    const live: Live = { ids: [], byAgent: new Map() };
    this.#live.set(id, live);
    void this.store.agentRunsOf(id).then(
      (all) => {
        for (const ar of all) if (!live.byAgent.has(ar.a)) live.byAgent.set(ar.a, ar);
        live.ids = [...live.byAgent.keys()].sort();
        recount(this.runs.get(id) ?? run, live);
      },
      (err: unknown) => {
        this.#live.delete(id);
        this.log.error({ err, run: id }, "reading the agents of another core's run failed");
      },
    );
  }

  /** Another core wrote an agent's record of a run (a status it took, a dispatch): counts follow. */
  remoteAgentRun(ar: AgentRun | undefined): void {
    if (!ar) return;
    const run = this.runs.get(ar.r);
    const live = this.#live.get(ar.r);
    if (!run || !live) return;
    const old = live.byAgent.get(ar.a);
    live.byAgent.set(ar.a, ar);
    if (!old) {
      // Only while the run's agents are being read (see remoteRun): counted once that ends.
      live.ids = [...live.byAgent.keys()].sort();
      return;
    }
    this.#dirty.delete(old);
    if (old.s !== ar.s) countMove(run, old.s, ar);
  }

  /** Another core took a run sequence number. */
  remoteSeq(seq: number | undefined): void {
    if (seq !== undefined) this.#seq = Math.max(this.#seq, seq);
  }

  async #liveOf(r: RunRecord): Promise<Live> {
    let live = this.#live.get(r.id);
    if (!live) {
      const all = await this.store.agentRunsOf(r.id);
      live = { ids: all.map((a) => a.a), byAgent: new Map(all.map((a) => [a.a, a])) };
      this.#live.set(r.id, live);
    }
    return live;
  }

  getRun(id: string): RunRecord {
    const r = this.runs.get(id);
    if (!r) throw new OutpostError(TaskErrors.RUN_NOT_FOUND, `no run with id '${id}'`, { status: 404 });
    return r;
  }

  /** Every agent record of a run (from memory while active). */
  async agentRuns(id: string): Promise<AgentRun[]> {
    const r = this.getRun(id);
    const live = this.#live.get(r.id);
    return live ? [...live.byAgent.values()] : this.store.agentRunsOf(r.id);
  }

  async agentRun(id: string, agentId: string): Promise<AgentRun | undefined> {
    const r = this.getRun(id);
    return this.#live.get(r.id)?.byAgent.get(agentId) ?? (await this.store.agentRuns.get(`${id}!${agentId}`));
  }

  outputsOf(runId: string, agentId: string): Promise<Array<[string, string]>> {
    return this.store.outputsOf(runId, agentId);
  }

  async create(input: {
    /** A given id (a hierarchy run's part on this core, found again after a restart); default: a new one. */
    id?: string | undefined;
    job: string;
    steps: RunStep[];
    agents: string[];
    expiresMs: number;
    once?: string | undefined;
    /** Each target's sites (for site-scoped administrators). */
    sitesOf?: ((agent: string) => readonly string[]) | undefined;
  }): Promise<{ run: RunRecord; skipped: string[] }> {
    const now = this.clock.now();
    let targets = [...new Set(input.agents)].sort();
    const skipped: string[] = [];
    let onceAsOf: ReturnType<typeof asOfNow>;
    if (input.once !== undefined) {
      // The once marks' final write is checked against other cores' changes since this read.
      onceAsOf = asOfNow(this.store.db);
      const seen = await this.store.once.getMany(targets.map((a) => `${input.once}!${a}`));
      targets = targets.filter((a, i) => (seen[i] === undefined ? true : (skipped.push(a), false)));
    }
    if (targets.length === 0) {
      throw new OutpostError(TaskErrors.NO_TARGETS, skipped.length ? `every target already ran a run with key '${input.once}'` : 'the run has no target agents', {
        status: 400,
        details: { skipped: skipped.length },
      });
    }
    const run: RunRecord = {
      id: input.id ?? newId('run'),
      job: input.job,
      steps: input.steps,
      createdAt: now,
      expiresAt: now + input.expiresMs,
      seq: 0,
      agents: targets.length,
      counts: { ...emptyCounts(), queued: targets.length },
      failures: {},
      ...(input.once === undefined ? {} : { once: input.once }),
      ...(input.sitesOf ? runSites(targets, input.sitesOf) : {}),
      ...(input.steps.length > 0 && input.steps.every((s) => s.task.kind === 'server') ? { server: true as const } : {}),
    };
    this.#sign(run);
    const live: Live = { ids: targets, byAgent: new Map() };
    const ops: BatchOp[] = [];
    const onceOps: BatchOp[] = [];
    for (const a of targets) {
      const ar: AgentRun = { r: run.id, a, s: 'queued', h: { q: now }, st: [] };
      live.byAgent.set(a, ar);
      ops.push(this.store.agentRunOp(ar));
      if (input.once !== undefined) onceOps.push(this.store.put(this.store.once, `${input.once}!${a}`, run.id));
    }
    // Agent records first, the run record last: a run visible after a crash is complete. The
    // `once` marks go with the run record: with several cores, two runs with one key cannot
    // both take an agent (the second is refused as a conflict and, retried, skips it).
    await this.store.write(ops);
    await this.#withSeq(run, (seq) => [...onceOps, this.store.put(this.store.runs, run.id, { ...run, seq }), this.store.put(this.store.meta, 'seq', seq)], onceAsOf);
    this.runs.set(run.id, run);
    this.#live.set(run.id, live);
    this.stats.created++;
    if (run.server) this.serverHooks?.run(run.id, targets);
    else this.tickleWork(this.#taskServersOf(targets));
    this.log.info({ run: run.id, job: run.job, tasks: run.steps.map((s) => s.name), agents: targets.length, skipped: skipped.length }, 'run created');
    return { run, skipped };
  }

  /**
   * Writes `ops(seq)` with the next run sequence number (task servers ask for runs after
   * the last seq they saw, so one seq must never serve two runs): the shared counter is in
   * the same batch, and when another core took the number first (a conflict, which hands
   * this core the counter's new value) the next one is tried.
   */
  async #withSeq(run: RunRecord, ops: (seq: number) => BatchOp[], asOf?: ReturnType<typeof asOfNow>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const seq = ++this.#seq;
      try {
        await this.store.write(ops(seq), asOf);
        run.seq = seq;
        return;
      } catch (err) {
        // Only a taken seq is retried here; any other record another core wrote (a `once` mark) refuses the run.
        if (attempt >= 5 || !isConflict(err) || conflictKeys(err).some((k) => k !== '!task-meta!seq')) throw err;
        // The rest of the batch passed that check: the retry is checked from now on.
        asOf = asOfNow(this.store.db);
      }
    }
  }

  #taskServersOf(agentIds: Iterable<string>): Set<string> {
    const ts = new Set<string>();
    for (const a of agentIds) {
      const t = this.registry.store.agents.get(a)?.taskServer;
      if (t) ts.add(t);
    }
    return ts;
  }

  /**
   * One page of work for a task server: runs changed after `since` (all active runs
   * when 0), each with those of its agents still waiting. `cursor` is `seq:index`.
   */
  pending(taskServer: string, since: number, cursor: string | undefined, limit: number): PendingPage {
    let [fromSeq, fromIdx] = [0, 0];
    if (cursor !== undefined) {
      const m = /^(\d+):(\d+)$/.exec(cursor);
      if (!m) throw new OutpostError(TaskErrors.BAD_CURSOR, `bad cursor '${cursor}'`, { status: 400 });
      [fromSeq, fromIdx] = [Number(m[1]), Number(m[2])];
    }
    this.stats.pendingPages++;
    const now = this.clock.now();
    const runs = [...this.runs.values()]
      .filter((r) => !r.server && r.seq > since && r.seq >= fromSeq && (since > 0 || r.finishedAt === undefined))
      .sort((a, b) => a.seq - b.seq);
    const page: PendingRun[] = [];
    let budget = limit;
    for (const r of runs) {
      const cancelled = r.cancelledAt !== undefined;
      const live = this.#live.get(r.id);
      const digest = this.#digests.get(r.id)!;
      const agents: string[] = [];
      const tickets: string[] = [];
      let i = r.seq === fromSeq ? fromIdx : 0;
      if (live && !cancelled && r.expiresAt > now) {
        for (; i < live.ids.length && budget > 0; i++) {
          const id = live.ids[i]!;
          const ar = live.byAgent.get(id)!;
          if (TERMINAL.has(ar.s) || this.registry.store.agents.get(id)?.taskServer !== taskServer) continue;
          const dk = this.registry.keyFor(id);
          if (!dk) continue;
          agents.push(id);
          tickets.push(workTicket(this.#ticketKeys.of(dk), digest, id));
          budget--;
          if (ar.h.d === undefined || ar.ts !== taskServer) {
            ar.h.d ??= now;
            ar.ts = taskServer;
            this.#dirty.add(ar);
          }
        }
      }
      page.push({
        id: r.id,
        seq: r.seq,
        job: r.job,
        steps: r.steps,
        expiresAt: r.expiresAt,
        nonce: r.nonce!,
        sig: r.sig!,
        cancelled,
        ...(cancelled && r.cancelSig !== undefined ? { cancelSig: r.cancelSig } : {}),
        agents,
        tickets,
      });
      if (budget === 0 && live && i < live.ids.length) return { seq: this.#seq, runs: page, next: `${r.seq}:${i}` };
    }
    return { seq: this.#seq, runs: page };
  }

  /**
   * Why an event from a task server is not applied, or undefined. Only the task server
   * the agent's run was handed to (or the agent's current one) may report for it, and
   * everything but its own hop marks (`tickled`/`fetched` at step -1) must carry the
   * agent's MAC: a relay can neither forge nor alter a result.
   */
  #refusal(e: StatusEvent, ar: AgentRun, taskServer: string): EventRefusal | undefined {
    if (ar.ts !== taskServer && this.registry.store.agents.get(e.agent)?.taskServer !== taskServer) return 'wrong-task-server';
    if (e.step === -1 && (e.state === 'tickled' || e.state === 'fetched') && e.mac === undefined) return undefined;
    if (e.mac === undefined) return 'no-mac';
    const dk = this.registry.keyFor(e.agent);
    return dk && verifyEventMac(this.#eventKeys.of(dk), e) ? undefined : 'bad-mac';
  }

  /** Applies status events (idempotently) and writes them before returning. */
  async ingest(events: StatusEvent[], from: EventSource): Promise<IngestResult> {
    // The agent runs first (a lookup may read the store); then, once no other ingest is
    // writing one of them, the events are applied with no wait in between.
    const found: Array<{ e: StatusEvent; run: RunRecord | undefined; ar: AgentRun | undefined }> = [];
    for (const e of events) {
      const run = this.runs.get(e.run);
      found.push({ e, run, ar: run ? (this.#live.get(run.id)?.byAgent.get(e.agent) ?? (await this.agentRun(run.id, e.agent))) : undefined });
    }
    for (;;) {
      const writes = new Set<Promise<unknown>>();
      for (const { ar } of found) {
        const w = ar && this.#writing.get(ar);
        if (w) writes.add(w);
      }
      if (writes.size === 0) break;
      await Promise.allSettled(writes);
    }
    const now = this.clock.now();
    const touched = new Set<AgentRun>();
    const touchedRuns = new Set<RunRecord>();
    const ops: BatchOp[] = [];
    const res: IngestResult = { accepted: 0, duplicates: 0, unknown: 0, refused: 0 };
    const refused: Partial<Record<EventRefusal, number>> = {};
    let example: string | undefined;
    // What the events change in memory, to put back if the write fails (so a resend applies them again).
    const before = new Map<AgentRun, AgentRun>();
    const runsBefore = new Map<RunRecord, Pick<RunRecord, 'counts' | 'failures' | 'finishedAt'>>();
    for (const { e, run, ar } of found) {
      this.stats.events++;
      if (!run || !ar) {
        res.unknown++;
        this.stats.unknown++;
        continue;
      }
      const refusal = from === 'core' ? undefined : this.#refusal(e, ar, from.taskServer);
      if (refusal) {
        res.refused++;
        this.stats.refused++;
        this.stats.refusedBy[refusal] = (this.stats.refusedBy[refusal] ?? 0) + 1;
        refused[refusal] = (refused[refusal] ?? 0) + 1;
        example ??= e.id;
        continue;
      }
      if (!before.has(ar)) before.set(ar, structuredClone(ar));
      if (!runsBefore.has(run)) runsBefore.set(run, structuredClone({ counts: run.counts, failures: run.failures, finishedAt: run.finishedAt }));
      const r = applyEvent(ar, e, now, run.steps.length);
      touched.add(ar);
      res.accepted++;
      if (r.duplicate) {
        res.duplicates++;
        this.stats.duplicates++;
        continue;
      }
      this.stats.applied++;
      if (e.output && e.step >= 0) ops.push(this.store.put(this.store.output, this.store.outputKey(e.run, e.agent, e.step, e.attempt), e.output));
      if (r.from !== r.to) {
        countMove(run, r.from, ar);
        // The record is written when the run finishes; until then its counts follow the agents' records.
        if (this.#maybeFinished(run, now)) touchedRuns.add(run);
      }
    }
    for (const ar of touched) {
      ops.push(this.store.agentRunOp(ar));
      this.#dirty.delete(ar);
    }
    for (const r of touchedRuns) ops.push(this.store.put(this.store.runs, r.id, r));
    const write = this.store.write(ops);
    for (const ar of touched) this.#writing.set(ar, write);
    try {
      await write;
    } catch (err) {
      // Not stored, so not applied: the caller is answered 503 and sends them again.
      for (const [ar, was] of before) {
        restore(ar, was);
        this.#dirty.add(ar);
      }
      // A run's counts are counted again from its agents' records, not put back from a copy:
      // another ingest of other agents of the run may have moved them meanwhile, and its write
      // may have been stored.
      for (const [run, was] of runsBefore) {
        const live = this.#live.get(run.id);
        if (live) recount(run, live);
        else Object.assign(run, { counts: was.counts, failures: was.failures });
        const c = run.counts;
        if (was.finishedAt === undefined && c.succeeded + c.failed + c.expired + c.cancelled < run.agents) run.finishedAt = undefined;
      }
      this.stats.applied -= res.accepted - res.duplicates;
      this.stats.duplicates -= res.duplicates;
      throw err;
    } finally {
      for (const ar of touched) if (this.#writing.get(ar) === write) this.#writing.delete(ar);
    }
    if (res.refused > 0) this.log.warn({ principal: from === 'core' ? 'core' : from.taskServer, refused, example }, 'status events refused');
    return res;
  }

  /** Marks the run finished when every agent is in a final state; true when it did now. */
  #maybeFinished(run: RunRecord, now: number): boolean {
    const c = run.counts;
    if (run.finishedAt === undefined && c.succeeded + c.failed + c.expired + c.cancelled >= run.agents) {
      run.finishedAt = now;
      this.log.info({ run: run.id, counts: run.counts, ms: now - run.createdAt }, 'run finished');
      return true;
    }
    return false;
  }

  /** Ends every agent still waiting: cancelled (by the admin) or expired (by time). */
  async #end(run: RunRecord, to: 'cancelled' | 'expired', now: number): Promise<void> {
    const live = await this.#liveOf(run);
    const woken: string[] = [];
    const ops: BatchOp[] = [];
    for (const ar of live.byAgent.values()) {
      if (TERMINAL.has(ar.s)) continue;
      const reason = to === 'expired' ? reasonNotReached(ar, this.registry, run.server) : 'cancelled';
      run.counts[ar.s]--;
      run.counts[to]++;
      ar.s = to;
      ar.e = reason;
      ar.h.c = now;
      ops.push(this.store.agentRunOp(ar));
      this.#dirty.delete(ar);
      woken.push(ar.a);
    }
    if (to === 'cancelled') {
      run.cancelledAt = now;
      run.cancelSig = signWork(this.workKey.privateKey, cancelBody(run.id));
    }
    this.#maybeFinished(run, now);
    run.finishedAt ??= now;
    if (to === 'cancelled') {
      // A cancel is new work for the task servers: it takes the next seq, as a new run does.
      await this.#withSeq(run, (seq) => [...ops, this.store.put(this.store.runs, run.id, { ...run, seq }), this.store.put(this.store.meta, 'seq', seq)]);
    } else {
      ops.push(this.store.put(this.store.runs, run.id, run));
      await this.store.write(ops);
    }
    if (run.server) this.serverHooks?.ended(run.id);
    else if (to === 'cancelled') this.tickleWork(this.#taskServersOf(woken));
    this.log.info({ run: run.id, agents: woken.length }, to === 'cancelled' ? 'run cancelled' : 'run expired');
  }

  async cancel(id: string): Promise<RunRecord> {
    const run = this.getRun(id);
    if (run.finishedAt !== undefined) throw new OutpostError(TaskErrors.RUN_FINISHED, `run '${id}' has finished already`, { status: 409 });
    await this.#end(run, 'cancelled', this.clock.now());
    return run;
  }

  /** What {@link ServerTasks} needs of the runs. */
  serverTaskHost(): ServerTaskHost {
    return {
      getRun: (id) => this.runs.get(id),
      agentRun: (r, a) => this.agentRun(r, a),
      agentName: (a) => this.registry.store.agents.get(a)?.name,
      ingest: (events) => this.ingest(events, 'core'),
      dispatched: (r, a, at) => {
        const ar = this.#live.get(r)?.byAgent.get(a);
        if (ar && ar.h.d === undefined) {
          ar.h.d = at;
          this.#dirty.add(ar);
        }
      },
    };
  }

  /** Active server runs and their agents not finished (to resume after a restart). */
  unfinishedServerRuns(): Array<[string, string[]]> {
    const out: Array<[string, string[]]> = [];
    for (const r of this.runs.values()) {
      if (!r.server || r.finishedAt !== undefined) continue;
      const live = this.#live.get(r.id);
      if (live) out.push([r.id, live.ids.filter((a) => !TERMINAL.has(live.byAgent.get(a)!.s))]);
    }
    return out;
  }

  /** Periodic: expires runs past their time (`expire`: on the core holding the lease), writes pending hop times, evicts old runs. */
  async tick(expire = true): Promise<void> {
    const now = this.clock.now();
    for (const run of this.runs.values()) {
      // Completed through other cores' statuses: the core holding the lease records the finish.
      if (expire && run.finishedAt === undefined && this.#maybeFinished(run, now)) {
        await this.store.write([this.store.put(this.store.runs, run.id, run)]).catch((err: unknown) => {
          run.finishedAt = undefined;
          if (!isConflict(err)) throw err;
        });
      }
      if (expire && run.finishedAt === undefined && run.expiresAt <= now) await this.#end(run, 'expired', now);
      if (run.finishedAt !== undefined && now - run.finishedAt > EVICT_AFTER_MS && this.#live.has(run.id)) {
        await this.flush();
        this.#live.delete(run.id);
      }
    }
    await this.flush();
    if (expire && this.retentionMs > 0) await this.#prune(now);
  }

  /** Removes runs finished more than the retention ago (a few per tick: a backlog drains over ticks). */
  async #prune(now: number): Promise<void> {
    let n = 0;
    for (const run of [...this.runs.values()]) {
      if (run.finishedAt === undefined || now - run.finishedAt <= this.retentionMs) continue;
      await this.#remove(run);
      if (++n >= PRUNE_PER_TICK) return;
    }
  }

  /**
   * Deletes a run: its agents' records and outputs, then (last, so a crash part-way leaves
   * it to be removed again) its record. Other cores drop it on seeing the record deleted.
   */
  async #remove(run: RunRecord): Promise<void> {
    const range = { gt: `${run.id}!`, lt: `${run.id}!\xff` };
    const ops: BatchOp[] = [];
    for (const k of await this.store.agentRuns.keys(range).all()) ops.push(this.store.del(this.store.agentRuns, k));
    for (const k of await this.store.output.keys(range).all()) ops.push(this.store.del(this.store.output, k));
    ops.push(this.store.del(this.store.runs, run.id));
    await this.store.write(ops);
    this.runs.delete(run.id);
    this.#live.delete(run.id);
    this.#digests.delete(run.id);
    this.stats.removed++;
    this.log.info({ run: run.id, job: run.job, agents: run.agents, finishedAt: new Date(run.finishedAt!).toISOString() }, 'run past its retention removed');
  }

  /** Writes hop times not yet written (dispatch times: not worth a write each). */
  async flush(): Promise<void> {
    if (this.#dirty.size === 0) return;
    const batch = [...this.#dirty];
    this.#dirty.clear();
    try {
      await this.store.write(batch.map((ar) => this.store.agentRunOp(ar)));
    } catch (err) {
      // Kept for the next flush (a conflict already handed over the other core's records instead).
      if (!isConflict(err)) for (const ar of batch) this.#dirty.add(ar);
      throw err;
    }
  }
}

/** The union of the targets' sites, and whether any target was in none. */
function runSites(targets: readonly string[], sitesOf: (agent: string) => readonly string[]): { sites: string[]; unsited?: true } {
  const sites = new Set<string>();
  let unsited = false;
  for (const a of targets) {
    const s = sitesOf(a);
    if (s.length === 0) unsited = true;
    for (const x of s) sites.add(x);
  }
  return { sites: [...sites].sort(), ...(unsited ? { unsited: true as const } : {}) };
}

/** Sets a run's counts and failure groups from its agents' records. */
function recount(run: RunRecord, live: Live): void {
  run.counts = emptyCounts();
  run.failures = {};
  for (const ar of live.byAgent.values()) countMove(run, undefined, ar);
}

/** Counts an agent in its state now, moved from `from` (none: newly counted); a failure joins its group. */
function countMove(run: RunRecord, from: AgentRun['s'] | undefined, ar: AgentRun): void {
  if (from !== undefined) run.counts[from]--;
  run.counts[ar.s]++;
  if (ar.s === 'failed') {
    const k = failureKey(run, ar);
    run.failures[k] = (run.failures[k] ?? 0) + 1;
  }
}

/** Puts an agent's run record back as it was (in place: the live map holds this object). */
function restore(ar: AgentRun, was: AgentRun): void {
  for (const k of Object.keys(ar)) if (!(k in was)) delete (ar as unknown as Record<string, unknown>)[k];
  Object.assign(ar, was);
}
