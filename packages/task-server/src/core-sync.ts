import { pendingPageSchema, taskAgentKeySchema, taskAgentKeysPageSchema, type Logger } from '@outpost/common';
import type { AgentBook } from './agents.js';
import type { CoreClient } from './core-client.js';
import type { TsStore } from './store.js';
import type { WorkBook } from './work.js';

export type SyncKind = 'work' | 'full' | 'agents';
const RANK: Record<SyncKind, number> = { work: 0, full: 1, agents: 2 };
/** Pages per sync at most (bounded loops): 400 × 5,000 agents. */
const MAX_PAGES = 400;
/** An unknown agent is looked up at the core at most this often. */
const NEGATIVE_TTL_MS = 15_000;

/**
 * Pulls from the core: the agents assigned here with their keys (`agents`), and pending
 * work in pages, either what changed since the last seq (`work`, on a WORK tickle) or
 * everything still waiting (`full`: at start, on the fallback interval, on CONFIG),
 * after which work the core no longer lists is dropped. Requests coalesce: one sync
 * runs at a time and at most one more is queued (the widest asked for).
 */
export class CoreSync {
  readonly stats = { syncs: 0, failures: 0, pages: 0, lastOkAt: 0, lookups: 0 };
  #seq = 0;
  #running: Promise<void> | undefined;
  #queued: SyncKind | undefined;
  readonly #negative = new Map<string, number>();

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
  ) {}

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

  /** Fetches one agent's key (a newly enrolled or re-assigned agent). */
  async lookupAgent(id: string): Promise<boolean> {
    if (this.agents.has(id)) return true;
    const until = this.#negative.get(id);
    if (until !== undefined && until > Date.now()) return false;
    this.stats.lookups++;
    try {
      const r = taskAgentKeySchema.parse(await this.core.call('GET', `/task-service/agents/${encodeURIComponent(id)}`));
      await this.agents.update([{ id: r.id, key: r.key }], false);
      this.#negative.delete(id);
      return true;
    } catch (err) {
      this.#markUnknown(id);
      this.log.debug({ agent: id, code: (err as { code?: string }).code }, 'agent lookup failed');
      return false;
    }
  }

  /** Not asked again for NEGATIVE_TTL_MS (the cache is bounded: cleared past 10,000). */
  #markUnknown(id: string): void {
    if (this.#negative.size > 10_000) this.#negative.clear();
    this.#negative.set(id, Date.now() + NEGATIVE_TTL_MS);
  }

  async settled(): Promise<void> {
    for (let i = 0; i < 10 && this.#running; i++) await this.#running;
  }
}
