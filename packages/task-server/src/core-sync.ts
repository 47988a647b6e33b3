import { pendingPageSchema, taskAgentKeySchema, taskAgentKeysPageSchema, TokenBucket, type Logger } from '@outpost/common';
import type { AgentBook } from './agents.js';
import type { CoreClient } from './core-client.js';
import type { TsStore } from './store.js';
import type { WorkBook } from './work.js';

export type SyncKind = 'work' | 'full' | 'agents';
const RANK: Record<SyncKind, number> = { work: 0, full: 1, agents: 2 };
/** Pages per sync at most (bounded loops): 400 × 5,000 agents. */
const MAX_PAGES = 400;
/**
 * Bounds on looking up agent ids an unauthenticated caller sends (any bearer id reaches
 * us): an unknown id is not asked again for `negativeTtlMs` (an LRU of `negativeMax` ids,
 * the oldest forgotten first), and all callers together start at most `lookupRate`
 * lookups per second (bursts of `lookupBurst`); beyond it an unknown id is refused
 * without a core call.
 */
export interface LookupLimits {
  negativeTtlMs: number;
  negativeMax: number;
  lookupRate: number;
  lookupBurst: number;
}
export const DEFAULT_LOOKUP_LIMITS: LookupLimits = { negativeTtlMs: 15_000, negativeMax: 10_000, lookupRate: 10, lookupBurst: 50 };

/**
 * What a caller-driven lookup found: the agent is now known, the core does not know it,
 * we did not ask (rate), or we could not ask (the core unreachable or failing: not cached).
 */
export type CallerLookup = 'known' | 'unknown' | 'limited' | 'unavailable';
type Lookup = 'known' | 'unknown' | 'unavailable';

/** The core's status in a failed call's error (`TASK_CORE_ERROR` carries it; a transport failure has none). */
const answerStatus = (err: unknown): unknown => (err as { details?: { status?: unknown } }).details?.status;

/**
 * Pulls from the core: the agents assigned here with their keys (`agents`), and pending
 * work in pages, either what changed since the last seq (`work`, on a WORK tickle) or
 * everything still waiting (`full`: at start, on the fallback interval, on CONFIG),
 * after which work the core no longer lists is dropped. Requests coalesce: one sync
 * runs at a time and at most one more is queued (the widest asked for).
 */
export class CoreSync {
  readonly stats = { syncs: 0, failures: 0, pages: 0, lastOkAt: 0, lookups: 0, lookupsLimited: 0, negativeHits: 0 };
  #seq = 0;
  #running: Promise<void> | undefined;
  #queued: SyncKind | undefined;
  /** Unknown id → until when it is not asked again; Map order is the LRU order. */
  readonly #negative = new Map<string, number>();
  readonly #inflight = new Map<string, Promise<Lookup>>();
  readonly #limits: LookupLimits;
  readonly #callerBucket: TokenBucket;

  constructor(
    private readonly core: CoreClient,
    private readonly store: TsStore,
    private readonly agents: AgentBook,
    private readonly work: WorkBook,
    private readonly pageSize: number,
    private readonly log: Logger,
    private readonly wake: (agents: Set<string>) => void,
    /** Agents the core no longer lists here (moved, deleted, blocked): their sockets are closed. */
    private readonly forgotten: (agents: string[]) => void = () => undefined,
    limits: Partial<LookupLimits> = {},
  ) {
    this.#limits = { ...DEFAULT_LOOKUP_LIMITS, ...limits };
    this.#callerBucket = new TokenBucket(this.#limits.lookupRate, { burst: this.#limits.lookupBurst });
  }

  async load(): Promise<void> {
    this.#seq = ((await this.store.meta.get('seq')) as number | undefined) ?? 0;
  }

  /** Asks for a sync; resolves when one that covers it has finished (or failed). */
  request(kind: SyncKind): Promise<void> {
    if (this.#running) {
      if (this.#queued === undefined || RANK[kind] > RANK[this.#queued]) this.#queued = kind;
      return this.#running;
    }
    this.#running = this.#run(kind).finally(() => {
      this.#running = undefined;
      const next = this.#queued;
      this.#queued = undefined;
      if (next) void this.request(next);
    });
    return this.#running;
  }

  async #run(kind: SyncKind): Promise<void> {
    this.stats.syncs++;
    try {
      if (kind === 'agents') await this.#syncAgents();
      await this.#syncWork(kind !== 'work');
      this.stats.lastOkAt = Date.now();
    } catch (err) {
      this.stats.failures++;
      this.log.warn({ code: (err as { code?: string }).code, message: (err as Error).message, kind }, 'sync with the core failed');
    }
  }

  async #syncAgents(): Promise<void> {
    const items: Array<{ id: string; key: string }> = [];
    let after: string | undefined;
    for (let i = 0; i < MAX_PAGES; i++) {
      const q = new URLSearchParams({ limit: String(this.pageSize) });
      if (after) q.set('after', after);
      const page = taskAgentKeysPageSchema.parse(await this.core.call('GET', `/task-service/agents?${q}`));
      items.push(...page.items);
      after = page.next;
      if (!after) break;
    }
    const removed = await this.agents.update(items, true);
    if (removed.length) {
      for (const id of removed) this.#markUnknown(id);
      this.forgotten(removed);
    }
    this.log.debug({ agents: items.length, removed: removed.length }, 'agents synced');
  }

  async #syncWork(full: boolean): Promise<void> {
    const since = full ? 0 : this.#seq;
    let cursor: string | undefined;
    let seq = this.#seq;
    const listed = new Map<string, Set<string>>();
    for (let i = 0; i < MAX_PAGES; i++) {
      const q = new URLSearchParams({ since: String(since), limit: String(this.pageSize) });
      if (cursor) q.set('cursor', cursor);
      const page = pendingPageSchema.parse(await this.core.call('GET', `/task-service/pending?${q}`));
      this.stats.pages++;
      seq = Math.max(seq, page.seq);
      for (const r of page.runs) {
        let set = listed.get(r.id);
        if (!set) listed.set(r.id, (set = new Set()));
        for (const a of r.agents) set.add(a);
      }
      // One line per run as it first arrives: the run id ties it to the core's and the agents' lines.
      for (const r of page.runs) if (!this.work.runs.has(r.id)) this.log.info({ run: r.id, job: r.job, tasks: r.steps.map((s) => (s as { name?: unknown }).name), agents: r.agents.length, cancelled: r.cancelled }, 'run received');
      const unknown = new Set(page.runs.flatMap((r) => r.agents).filter((a) => !this.agents.has(a)));
      if (unknown.size) await this.#fetchKeys(unknown);
      // Wake each page's agents as soon as it is stored: tickles go out while later pages load.
      const woken = await this.work.apply(page.runs);
      if (woken.size) this.wake(woken);
      cursor = page.next;
      if (!cursor) break;
    }
    if (full) await this.work.retainOnly(listed);
    if (seq !== this.#seq) {
      this.#seq = seq;
      await this.store.meta.put('seq', seq);
    }
  }

  async #fetchKeys(ids: Set<string>): Promise<void> {
    // Many new agents at once: one paged listing beats one request each.
    if (ids.size > 50) return this.#syncAgents();
    for (const id of ids) await this.lookupAgent(id);
  }

  /**
   * An id an unauthenticated caller presented: known now, unknown (the core says so, or
   * said so within negativeTtlMs), or limited (over the global lookup rate: not asked).
   */
  async lookupCaller(id: string): Promise<CallerLookup> {
    if (this.agents.has(id)) return 'known';
    if (this.#isNegative(id)) {
      this.stats.negativeHits++;
      return 'unknown';
    }
    if (!this.#inflight.has(id) && !this.#callerBucket.tryTake(1)) {
      this.stats.lookupsLimited++;
      return 'limited';
    }
    return this.#ask(id);
  }

  /** Fetches one agent's key (a newly enrolled or re-assigned agent); one request per id at a time. */
  async lookupAgent(id: string): Promise<boolean> {
    return (await this.#ask(id)) === 'known';
  }

  #ask(id: string): Promise<Lookup> {
    if (this.agents.has(id)) return Promise.resolve('known');
    if (this.#isNegative(id)) return Promise.resolve('unknown');
    let p = this.#inflight.get(id);
    if (!p) {
      p = this.#lookup(id).finally(() => this.#inflight.delete(id));
      this.#inflight.set(id, p);
    }
    return p;
  }

  /**
   * Only the core's answer that the agent is not assigned here (404) is cached as unknown:
   * a core that is down or cannot answer now (its store unavailable) decides nothing, and
   * the agent is asked again on its next call.
   */
  async #lookup(id: string): Promise<Lookup> {
    this.stats.lookups++;
    try {
      const r = taskAgentKeySchema.parse(await this.core.call('GET', `/task-service/agents/${encodeURIComponent(id)}`));
      await this.agents.update([{ id: r.id, key: r.key }], false);
      this.#negative.delete(id);
      return 'known';
    } catch (err) {
      const status = answerStatus(err);
      this.log.debug({ agent: id, code: (err as { code?: string }).code, status }, 'agent lookup failed');
      if (status !== 404) return 'unavailable';
      this.#markUnknown(id);
      return 'unknown';
    }
  }

  #isNegative(id: string): boolean {
    const until = this.#negative.get(id);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#negative.delete(id);
    return false;
  }

  /** Not asked again for negativeTtlMs; past negativeMax ids the least recently marked is forgotten. */
  #markUnknown(id: string): void {
    this.#negative.delete(id);
    this.#negative.set(id, Date.now() + this.#limits.negativeTtlMs);
    while (this.#negative.size > this.#limits.negativeMax) {
      const oldest = this.#negative.keys().next().value;
      if (oldest === undefined) break;
      this.#negative.delete(oldest);
    }
  }

  async settled(): Promise<void> {
    for (let i = 0; i < 10 && this.#running; i++) await this.#running;
  }
}
