import { z, type Logger } from '@outpost/common';
import type { PackageRecord } from '../packages/model.js';
import type { PackageService } from '../packages/service.js';
import type { Source } from '../packages/staging.js';
import type { LinkResponse } from './link-get.js';
import type { ParentRecord } from './model.js';

/** How often packages from upstream are looked at, and the parent asked for sources while none is ready there. */
export const UPSTREAM_TICK_MS = 250;
/** How long a child waits for the parent's package servers to be ready before this core fetches the content itself. */
export const UPSTREAM_WAIT_MS = 60_000;
/** How often known sources are asked again (while a package server of this core still stages). */
const REFRESH_MS = 10_000;
/** Packages whose sources are asked per tick. */
const ASKS_PER_TICK = 16;
/** Files this core fetches from the parent at once (fallback). */
const CONCURRENCY = 2;
/** A failed fallback fetch of a file is tried again after this long. */
const RETRY_MS = 5_000;

/** The parent's answer to `GET /sources/<packageId>` on its link listener. */
export const offerSchema = z
  .object({
    id: z.string().max(100),
    manifestHash: z.string().regex(/^[0-9a-f]{64}$/),
    sources: z.array(z.object({ url: z.string().url().max(2048).regex(/^https?:\/\//), serverId: z.string().max(100) }).strict()).max(64),
    staging: z.number().int().min(0).max(1_000_000),
  })
  .strict();
export type Offer = z.infer<typeof offerSchema>;

export interface UpstreamDeps {
  packages(): PackageService | undefined;
  parent(): ParentRecord | undefined;
  log: Logger;
  now(): number;
  /** The parent's offer for a package; undefined when the parent does not offer it (404). */
  offer(parent: ParentRecord, id: string): Promise<Offer | undefined>;
  /** Content from the parent's link listener, from byte `offset` on. */
  content(parent: ParentRecord, sha: string, offset: number): Promise<LinkResponse>;
  /** Whether this core fetches content from the parent (several cores on one PostgreSQL: the holder of the `hierarchy.child` lease; level: always). */
  fetches?(): boolean;
}

interface Wanted {
  packageId: string;
  path: string;
  sha: string;
  size: number;
}

/**
 * Packages a parent sent down, on the child: their content need not cross into this core.
 * The parent's ready package servers (asked on its link listener, `GET /sources/<id>`) are
 * handed to this core's unconstrained package servers as sources, ahead of this core; they
 * fetch straight from them, verifying every file's sha256. This core fetches the content
 * from the parent's link listener itself only as a fallback: when none of its package
 * servers is unconstrained, when the parent has no ready package server for the package
 * (none staging it, or none ready within {@link UPSTREAM_WAIT_MS}), or when an
 * unconstrained server of this core failed with every source it had. Those fetches run
 * here, off the link's page apply, {@link CONCURRENCY} files at a time, resumed from the
 * partial (`Range`) after a restart: every decision is derived again from the store on each
 * tick, so nothing of it needs to survive a crash.
 */
export class UpstreamContent {
  /** packageId → the parent's codebases for it. */
  readonly sources = new Map<string, Source[]>();
  readonly counters = { fetchedBytes: 0, fetchedFiles: 0, failures: 0 };
  /** Why the last fetch of content from the parent failed (kept until one succeeds). */
  lastError: string | undefined;
  readonly #askedAt = new Map<string, number>();
  readonly #waitingSince = new Map<string, number>();
  readonly #fallback = new Set<string>();
  readonly #queue: Wanted[] = [];
  readonly #queued = new Set<string>();
  readonly #active = new Map<string, LinkResponse | undefined>();
  readonly #failedAt = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #stopped = false;

  constructor(private readonly deps: UpstreamDeps) {}

  start(): void {
    this.#stopped = false;
    this.#timer = setInterval(() => void this.tick(), UPSTREAM_TICK_MS);
    this.#timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const r of this.#active.values()) r?.body.destroy();
    await this.#ticking?.catch(() => undefined);
  }

  /** Sources for `sourcesFor` (PackageService.upstreamSources). */
  sourcesOf(packageId: string): Source[] {
    return this.sources.get(packageId) ?? [];
  }

  /** Looks at every package from upstream now (after a page applied one). */
  tick(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#ticking ??= this.#tick().finally(() => (this.#ticking = undefined));
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    const svc = this.deps.packages();
    const parent = this.deps.parent();
    if (!svc) return;
    let asks = 0;
    for (const pkg of [...svc.store.packages.values()]) {
      if (this.#stopped) return;
      if (pkg.upstream === undefined || !pkg.enabled || !parent || pkg.upstream !== parent.parentId) {
        this.#forget(pkg.id);
        continue;
      }
      // Held here now: the sources known stay (ahead of this core), none is asked for any more.
      if (pkg.state === 'ready') continue;
      if (this.#fallback.has(pkg.id) || this.#needsFallback(svc, pkg)) {
        this.#want(svc, pkg);
        continue;
      }
      const now = this.deps.now();
      const known = this.sources.get(pkg.id);
      if (asks >= ASKS_PER_TICK || now - (this.#askedAt.get(pkg.id) ?? 0) < (known?.length ? REFRESH_MS : UPSTREAM_TICK_MS)) continue;
      asks++;
      this.#askedAt.set(pkg.id, now);
      if (!this.#waitingSince.has(pkg.id)) this.#waitingSince.set(pkg.id, now);
      let offer: Offer | undefined;
      try {
        offer = await this.deps.offer(parent, pkg.id);
      } catch (err) {
        this.deps.log.debug({ err, package: pkg.id }, "asking the parent for a package's sources failed");
        continue;
      }
      const next: Source[] = offer && offer.manifestHash === pkg.manifestHash ? offer.sources.map((s) => ({ url: s.url, kind: 'codebase', serverId: s.serverId, inSite: false })) : [];
      if (JSON.stringify(next) !== JSON.stringify(known ?? [])) {
        if (next.length) this.sources.set(pkg.id, next);
        else this.sources.delete(pkg.id);
        this.deps.log.info({ package: pkg.id, sources: next.map((s) => s.url) }, "the parent's package servers are sources for this core's");
        await svc.upstreamChanged(pkg.id);
      }
      if (next.length > 0) this.#waitingSince.delete(pkg.id);
      else if (!offer || offer.manifestHash !== pkg.manifestHash || offer.staging === 0 || now - this.#waitingSince.get(pkg.id)! >= UPSTREAM_WAIT_MS) {
        this.deps.log.info({ package: pkg.id, offered: offer !== undefined, staging: offer?.staging }, 'no package server of the parent has the package: this core fetches it from the parent');
        this.#fallback.add(pkg.id);
        this.#want(svc, pkg);
      }
    }
    // The fetch writes into the content store the cores share: one core does it (the lease).
    if (parent && (this.deps.fetches?.() ?? true)) this.#pump(svc, parent);
  }

  /** No unconstrained package server of this core stages it, or one failed with every source it had. */
  #needsFallback(svc: PackageService, pkg: PackageRecord): boolean {
    const servers = svc.packageServers();
    const status = svc.store.statusOf(pkg.id);
    const feeders = pkg.targets.filter((id) => servers.get(id)?.constrained === false);
    // Staging is released only once there is a source (PackageService holds it before): a failure is one of the parent's sources failing.
    const why = feeders.length === 0 ? 'no unconstrained package server here' : feeders.some((id) => status.get(id)?.released && status.get(id)?.state === 'failed') ? 'a package server failed with the sources it had' : undefined;
    if (why) this.deps.log.info({ package: pkg.id, why }, 'this core fetches the content from the parent');
    return why !== undefined;
  }

  #forget(id: string): void {
    this.sources.delete(id);
    this.#askedAt.delete(id);
    this.#waitingSince.delete(id);
    this.#fallback.delete(id);
  }

  #want(svc: PackageService, pkg: PackageRecord): void {
    this.#fallback.add(pkg.id);
    for (const f of pkg.files) {
      if (svc.content.has(f.sha256) || this.#queued.has(f.sha256) || this.#active.has(f.sha256)) continue;
      this.#queued.add(f.sha256);
      this.#queue.push({ packageId: pkg.id, path: f.path, sha: f.sha256, size: f.size });
    }
  }

  #pump(svc: PackageService, parent: ParentRecord): void {
    const now = this.deps.now();
    for (let i = 0; i < this.#queue.length && this.#active.size < CONCURRENCY; ) {
      const w = this.#queue[i]!;
      if (now - (this.#failedAt.get(w.sha) ?? -Infinity) < RETRY_MS) {
        i++;
        continue;
      }
      this.#queue.splice(i, 1);
      this.#queued.delete(w.sha);
      this.#active.set(w.sha, undefined);
      void this.#fetch(svc, parent, w)
        .then(
          () => {
            this.#failedAt.delete(w.sha);
            this.lastError = undefined;
          },
          (err: unknown) => {
            this.counters.failures++;
            this.lastError = (err as Error).message;
            this.#failedAt.set(w.sha, this.deps.now());
            if (!this.#stopped) this.deps.log.warn({ err, package: w.packageId, path: w.path }, 'fetching package content from the parent failed; tried again');
          },
        )
        .finally(() => {
          this.#active.delete(w.sha);
          if (!this.#stopped) this.#pump(svc, parent);
        });
    }
  }

  async #fetch(svc: PackageService, parent: ParentRecord, w: Wanted): Promise<void> {
    const pkg = svc.store.packages.get(w.packageId);
    if (!pkg || svc.content.has(w.sha)) return;
    const offset = await svc.content.received(w.sha);
    const r = await this.deps.content(parent, w.sha, offset);
    this.#active.set(w.sha, r);
    if (r.status !== (offset > 0 ? 206 : 200)) {
      r.body.resume();
      throw new Error(`the parent answered ${r.status} for content ${w.sha} from ${offset}`);
    }
    const res = await svc.upload(pkg, w.path, offset, r.body, w.size - offset);
    if (!res.complete) throw new Error(`content ${w.sha} arrived incomplete from the parent (${res.received} of ${w.size} bytes)`);
    this.counters.fetchedBytes += w.size - offset;
    this.counters.fetchedFiles++;
  }
}
