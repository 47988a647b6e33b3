import type { Readable } from 'node:stream';
import { hashSecret, newId, newSecret, OutpostError, type AppState } from '@outpost/common';
import type { Middleware } from 'koa';
import type { Authority } from '../ca/authority.js';
import type { CoreContext } from '../module.js';
import { isTasksModule } from '../tasks/module.js';
import { packageService } from '../packages/module.js';
import type { PackageService } from '../packages/service.js';
import { DownApplier } from './apply.js';
import { linkGet } from './link-get.js';
import { offerSchema, UpstreamContent } from './upstream.js';
import { ChildSide } from './child.js';
import { linkTimeout, type HierarchyConfig } from './config.js';
import { HierarchyErrors } from './errors.js';
import type { ChildRecord, HierRunRecord, JoinTokenRecord, OriginRecord, ParentRecord, ResultRecord, Summary } from './model.js';
import { ParentSide } from './parent.js';
import { RunCounts, type RunTally } from './run-counts.js';
import { HierRuns } from './runs.js';
import { HierarchyStore } from './store.js';
import { Summaries } from './summaries.js';
import { certificateFingerprint } from '../ca/authority.js';

/** How often hierarchy runs past the retention are looked for. */
const PRUNE_EVERY_MS = 10 * 60_000;

const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());

/** Admin routes that change an item a parent owns, with the property a parent may let children change. */
const READ_ONLY: Array<{ re: RegExp; methods: readonly string[]; sub: string; editable?: string }> = [
  { re: /^\/api\/v1\/tasks\/([^/]+)$/, methods: ['PUT', 'DELETE'], sub: 'task-defs' },
  { re: /^\/api\/v1\/jobs\/([^/]+)$/, methods: ['PUT', 'DELETE'], sub: 'task-jobs' },
  { re: /^\/api\/v1\/packages\/([^/]+)\/(?:enable|disable)$/, methods: ['POST'], sub: 'packages', editable: 'packages.enabled' },
  { re: /^\/api\/v1\/packages\/([^/]+)(?:\/files\/.*)?$/, methods: ['PUT', 'DELETE'], sub: 'packages' },
  { re: /^\/api\/v1\/boot\/images\/([^/]+)$/, methods: ['DELETE'], sub: 'boot-images' },
  { re: /^\/api\/v1\/roles\/([^/]+)$/, methods: ['DELETE'], sub: 'admin-roles' },
  { re: /^\/api\/v1\/admins\/([^/]+)(?:\/password)?$/, methods: ['PATCH', 'PUT', 'DELETE'], sub: 'admins' },
];

/**
 * The hierarchy on one core: its children (when it has a link listener), its parent (when
 * it joined one), what goes down and up, hierarchy runs, and the read-only guard for the
 * items a parent owns. See README.md here.
 */
export class HierarchyService {
  readonly store: HierarchyStore;
  readonly parent: ParentSide;
  readonly child: ChildSide;
  readonly applier: DownApplier;
  readonly runs: HierRuns;
  readonly counts: RunCounts;
  readonly summaries: Summaries;
  readonly upstream: UpstreamContent;
  #timer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  #ticking: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ctx: CoreContext,
    private readonly config: HierarchyConfig,
    readonly authority: Authority,
  ) {
    const store = (this.store = new HierarchyStore(ctx.db));
    const now = (): number => ctx.clock.now();
    const log = ctx.log;
    const feed = ctx.store.feed;
    this.parent = new ParentSide({
      store,
      config,
      authority,
      name: config.name,
      feed,
      log,
      now,
      contentPath: async (sha) => {
        const svc = this.#packages();
        return svc?.content.has(sha) ? svc.content.pathOf(sha) : undefined;
      },
      packageOffer: (id) => this.#packages()?.upstreamOffer(id),
    });
    this.upstream = new UpstreamContent({
      packages: () => this.#packages(),
      parent: () => this.child.parent,
      log,
      now,
      offer: async (parent, id) => {
        const r = await linkGet(parent, `/sources/${id}`, linkTimeout(config));
        const text = await readLimited(r.body, 256 * 1024);
        if (r.status === 404) return undefined;
        if (r.status !== 200) throw new Error(`the parent answered ${r.status} for the sources of ${id}`);
        return offerSchema.parse(JSON.parse(text));
      },
      content: (parent, sha, offset) => linkGet(parent, `/content/${sha}`, linkTimeout(config), offset > 0 ? { range: `bytes=${offset}-` } : {}),
      fetches: () => this.#linkHere(),
    });
    this.applier = new DownApplier({
      store,
      log,
      dispatch: (sub, key, value) => ctx.store.dispatch(sub, key, value),
      packages: () => this.#packages(),
      packageApplied: () => void this.upstream.tick(),
      onRun: (run) => this.runs.handle(run),
    });
    this.child = new ChildSide({
      store,
      config,
      authority,
      name: config.name,
      feed,
      log,
      now,
      applyDown: (parent, entries, to, snapshot, done) => this.applier.apply(parent, entries, to, snapshot, done),
      linkOpened: () => this.applier.reset(),
      forgetParent: (id) => this.applier.forget(id),
      mayLink: () => this.#linkHere(),
    });
    this.counts = new RunCounts(store);
    this.runs = new HierRuns({
      selfId: authority.coreId,
      counts: this.counts,
      store,
      feed,
      registry: ctx.registry,
      tasks: () => {
        const m = ctx.module('tasks');
        return isTasksModule(m) ? m : undefined;
      },
      log,
      now,
      defaultExpiryMs: ctx.config.tasks.defaultExpiry,
      writes: () => this.#linkHere(),
    });
    this.summaries = new Summaries({
      selfId: authority.coreId,
      name: config.name,
      store,
      registry: ctx.registry,
      packages: () => this.#packages(),
      replicated: (id) => this.applier.ownerOf('packages', id) !== undefined,
      log,
      now,
    });
  }

  #packages(): PackageService | undefined {
    return packageService(this.ctx);
  }

  /**
   * Whether this core does the child's side of the hierarchy: the link to the parent,
   * summaries and results up, content from the parent. Several cores on one PostgreSQL share
   * one parent link; the holder of the `hierarchy.child` lease runs it (level: always).
   */
  #linkHere(): boolean {
    return this.ctx.leases.held('hierarchy.child');
  }

  async start(): Promise<void> {
    await this.parent.load();
    await this.child.load();
    await this.applier.load();
    await this.parent.listen();
    const pkgs = this.#packages();
    if (pkgs) {
      pkgs.downstream = () => this.parent.children.size;
      pkgs.upstreamSources = (id) => this.upstream.sourcesOf(id);
    }
    await this.runs.start();
    await this.counts.load();
    this.child.start();
    this.upstream.start();
    this.#timer = setInterval(() => void this.tick(), this.config.summaryInterval);
    this.#timer.unref();
    if (this.child.parent) void this.tick();
    // Another core of this store joined or left a parent, or applied what the parent sent
    // (the items it owns are read-only here too).
    this.ctx.store.onRemote('hier-parent', (_key, value) => this.child.remoteParent(value as ParentRecord | undefined));
    this.ctx.store.onRemote('hier-origin', (key, value) => {
      if (value === undefined) this.applier.origins.delete(key);
      else this.applier.origins.set(key, value as OriginRecord);
    });
    // Several cores on one PostgreSQL: a core that takes the lease over picks up where the
    // last holder stopped (holding it now, the start above did); one that lost it closes its link.
    this.ctx.leases.onAcquired('hierarchy.child', () => void this.#takeOver(), { now: false });
    this.ctx.leases.onLost('hierarchy.child', () => this.child.pause());
    // Run history: a hierarchy run this core started goes after the tasks retention; one the
    // parent started goes here when the parent's deletion comes down.
    this.ctx.store.onRemote('hier-runs', (id, value) => {
      if (value === undefined && this.#linkHere()) void this.runs.forget(id).catch((err: unknown) => this.ctx.log.error({ err, run: id }, "removing a hierarchy run's results failed"));
    });
    this.#pruneTimer = setInterval(() => void this.prune(), PRUNE_EVERY_MS);
    this.#pruneTimer.unref();
  }

  /** Removes the hierarchy runs this core started that are past the tasks retention (the core holding tasks.expiry does). */
  async prune(): Promise<number> {
    const retention = this.ctx.config.tasks.retention;
    if (retention <= 0 || !this.ctx.leases.held('tasks.expiry')) return 0;
    try {
      return await this.runs.prune(this.ctx.clock.now(), retention);
    } catch (err) {
      this.ctx.log.error({ err }, 'removing hierarchy runs past their retention failed');
      return 0;
    }
  }

  async #takeOver(): Promise<void> {
    try {
      this.ctx.log.info('this core takes over the link to the parent and the child side of the hierarchy');
      await this.child.resume();
      await this.runs.catchUp();
      void this.upstream.tick();
      void this.tick();
    } catch (err) {
      this.ctx.log.error({ err }, 'taking over the child side of the hierarchy failed');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#pruneTimer);
    await this.#ticking.catch(() => undefined);
    await this.runs.stop();
    await this.upstream.stop();
    await this.child.stop();
    await this.parent.close();
  }

  /** Writes this core's changed summaries (when it has a parent: they go up with the journal). */
  tick(): Promise<unknown> {
    if (!this.child.parent || !this.#linkHere()) return Promise.resolve();
    this.#ticking = this.#ticking.then(() => this.summaries.tick()).catch((err: unknown) => this.ctx.log.error({ err }, 'writing summaries for the parent failed'));
    return this.#ticking;
  }

  async createToken(input: { note?: string | undefined; expires?: number | undefined }): Promise<{ id: string; token: string; expiresAt: string; joinCommand: string }> {
    if (!this.config.listen) throw new OutpostError(HierarchyErrors.NO_LISTENER, 'this core has no link listener (hierarchy.listen in its config): children cannot join it', { status: 409 });
    const id = newId('hjt');
    const secret = newSecret(24);
    const now = this.ctx.clock.now();
    const rec: JoinTokenRecord = { id, hash: hashSecret(secret), createdAt: now, expiresAt: now + (input.expires ?? this.config.tokenExpiry), ...(input.note ? { note: input.note } : {}) };
    await this.store.write([this.store.put(this.store.tokens, id, rec)]);
    const token = `${id}.${secret}.${certificateFingerprint(this.authority.certPem)}`;
    return { id, token, expiresAt: iso(rec.expiresAt)!, joinCommand: `outpost hierarchy join ${this.parent.url} --token ${token}` };
  }

  join(url: string, token: string): Promise<ParentRecord> {
    return this.child.join(url, token);
  }

  async leave(): Promise<string> {
    const id = this.child.parent?.parentId;
    await this.child.leave();
    return id ?? '';
  }

  async replicateNow(full: boolean): Promise<ReturnType<HierarchyService['status']>> {
    await this.tick();
    this.parent.now();
    this.child.now(full);
    return this.status();
  }

  status(): {
    core: { id: string; name: string };
    listener: string | null;
    parent: Record<string, unknown> | null;
    children: Array<Record<string, unknown>>;
  } {
    const now = this.ctx.clock.now();
    const head = this.ctx.store.feed.head();
    const p = this.child.parent;
    const c = this.child;
    const childView = (r: ChildRecord): Record<string, unknown> => {
      const session = this.parent.sessions.get(r.id);
      const silent = now - (r.lastSeen ?? r.joinedAt);
      const state = r.removedAt !== undefined ? 'removed' : session ? (silent < this.config.degradedAfter ? 'ok' : 'degraded') : silent < this.config.failedAfter ? 'degraded' : 'failed';
      return {
        id: r.id,
        name: r.name,
        state,
        connected: session !== undefined,
        links: this.parent.linksOpened.get(r.id) ?? 0,
        joinedAt: iso(r.joinedAt),
        lastSync: iso(r.lastSeen),
        lag: Math.max(0, head - r.downAcked),
        pending: Math.max(0, head - (session?.cursor ?? r.downAcked)),
        upApplied: r.upApplied,
        skipped: r.skipped ?? 0,
        cores: r.cores,
        lastError: r.lastError ?? null,
        bytes: { down: r.bytesDown, up: r.bytesUp, content: this.parent.contentServed.get(r.id) ?? 0 },
        ...(r.removedAt !== undefined ? { removedAt: iso(r.removedAt) } : {}),
      };
    };
    return {
      core: { id: this.authority.coreId, name: this.config.name },
      listener: this.config.listen ? this.parent.url : null,
      parent: p
        ? {
            id: p.parentId,
            name: p.parentName,
            url: p.url,
            // Several cores on one PostgreSQL: whether this one holds the link (the others show it idle).
            here: this.#linkHere(),
            state: c.state(),
            connected: c.connected,
            lastSync: iso(c.lastSync),
            lag: Math.max(0, c.parentHead - p.downApplied),
            pending: c.upCursor === undefined ? null : Math.max(0, head - c.upCursor),
            lastError: c.lastError ?? null,
            bytes: { down: c.bytesDown, up: c.bytesUp, content: this.upstream.counters.fetchedBytes },
            contentError: this.upstream.lastError ?? null,
            replaced: this.applier.replaced,
            applied: this.applier.applied,
            skipped: this.applier.skipped,
            refused: c.refused,
            editable: p.editable ?? [],
          }
        : null,
      children: [...this.parent.children.values()].map(childView),
    };
  }

  /**
   * The agents of the cores below this one (their summaries). One computer known to two
   * cores (a MAC in common) is merged: the record with the latest contact stands for it
   * and lists the others under `duplicates`; `merged` counts them.
   */
  async agents(core: string | undefined, limit: number, onlyDuplicates: boolean): Promise<{ items: Summary[]; merged: number }> {
    const all = (await this.store.list(this.store.up, core ? `${core}!agent!` : '')).map(([, v]) => v).filter((s) => s.kind === 'agent');
    const byMac = new Map<string, Summary[]>();
    for (const a of all) for (const m of (a.macs as string[] | undefined) ?? []) byMac.set(m, [...(byMac.get(m) ?? []), a]);
    const loser = new Set<Summary>();
    const dupes = new Map<Summary, Array<{ core: string; id: string }>>();
    for (const group of byMac.values()) {
      if (group.length < 2) continue;
      const sorted = [...group].sort((x, y) => String(y.lastContact ?? '').localeCompare(String(x.lastContact ?? '')) || x.core.localeCompare(y.core));
      const winner = sorted[0]!;
      for (const other of sorted.slice(1)) {
        if (other === winner || loser.has(other)) continue;
        loser.add(other);
        dupes.set(winner, [...(dupes.get(winner) ?? []), { core: other.core, id: other.id }]);
      }
    }
    const items = all.filter((a) => !loser.has(a)).map((a) => (dupes.has(a) ? { ...a, duplicates: dupes.get(a) } : a));
    return { items: (onlyDuplicates ? items.filter((a) => 'duplicates' in a) : items).slice(0, limit), merged: loser.size };
  }

  async startRun(body: { job: string; all?: boolean | undefined; cores?: string[] | undefined; site?: string | undefined; expires?: number | undefined }, by: string | undefined): Promise<HierRunRecord> {
    const tasks = this.ctx.module('tasks');
    if (!isTasksModule(tasks) || !tasks.defs) throw new Error('tasks module not started');
    tasks.defs.getJob(body.job);
    const run: HierRunRecord = {
      id: newId('hr'),
      job: body.job,
      target: { ...(body.all ? { all: true } : {}), ...(body.cores ? { cores: body.cores } : {}), ...(body.site !== undefined ? { site: body.site } : {}) },
      origin: this.authority.coreId,
      createdAt: this.ctx.clock.now(),
      ...(body.expires !== undefined ? { expiresMs: body.expires } : {}),
      ...(by ? { by } : {}),
    };
    this.counts.track(run.id);
    await this.store.write([this.store.put(this.store.runs, run.id, run)]);
    await this.runs.handle(run);
    this.parent.now();
    return run;
  }

  async listRuns(): Promise<HierRunRecord[]> {
    return (await this.store.list(this.store.runs)).map(([, v]) => v).sort((a, b) => b.createdAt - a.createdAt);
  }

  /**
   * A hierarchy run with its counts (by state and by core) and, unless `agents` is false,
   * every agent's result. Counts only is O(1) in the agents (kept in memory, see
   * run-counts.ts): what a poll at 75,000 agents asks for.
   */
  async runView(id: string, agents = true): Promise<({ run: HierRunRecord; agents?: ResultRecord[] } & RunTally) | undefined> {
    const run = await this.store.runs.get(id);
    if (!run) return undefined;
    if (!agents) return { run, ...(await this.counts.tally(id)) };
    const items = (await this.store.list(this.store.results, `${id}!`)).map(([, v]) => v);
    const counts: Record<string, number> = {};
    const cores: Record<string, number> = {};
    for (const a of items) {
      counts[a.state] = (counts[a.state] ?? 0) + 1;
      cores[a.core] = (cores[a.core] ?? 0) + 1;
    }
    return { run, counts, cores, agents: items };
  }

  /**
   * Refuses changes to items a parent owns (409 CORE_HIERARCHY_READ_ONLY), but for the
   * properties it lets children change. Mounted after authentication.
   */
  guard(): Middleware<AppState> {
    return async (ctx, next) => {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD' && this.applier.origins.size > 0) {
        for (const rule of READ_ONLY) {
          const m = rule.re.exec(ctx.path);
          if (!m || !rule.methods.includes(ctx.method)) continue;
          let key = decodeURIComponent(m[1]!);
          if (rule.sub === 'packages') {
            try {
              key = this.#packages()?.resolve(key).id ?? key;
            } catch {
              break;
            }
          }
          const owner = this.applier.ownerOf(rule.sub, key);
          if (!owner) break;
          if (rule.editable && (this.child.parent?.editable ?? []).includes(rule.editable)) break;
          throw new OutpostError(HierarchyErrors.READ_ONLY, `${rule.sub.replace(/s$/, '')} '${key}' belongs to the parent core ${owner.core}: change it there`, {
            status: 409,
            details: { owner: owner.core, editable: this.child.parent?.editable ?? [] },
          });
        }
      }
      await next();
    };
  }
}

/** A body of at most `limit` bytes, as text. */
async function readLimited(body: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) {
      body.destroy();
      throw new Error(`an answer of the parent over ${limit} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}
