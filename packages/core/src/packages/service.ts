import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { OutpostError, TickleFlags, isOutpostError, serialRunner, type Logger } from '@outpost/common';
import type { CoreContext } from '../module.js';
import type { PackagesConfig } from './config.js';
import type { ContentStore } from './content-store.js';
import { PackageErrors } from './errors.js';
import { checkManifest, defaultVersion, manifestHash, packageId } from './manifest.js';
import { stageable, type DownloadRecord, type FileEntry, type PackageRecord, type ServerPackageState, type ServerStatusRecord } from './model.js';
import { nextReleases, planTargets, sourcesFor, waitingFor, type PackageServerInfo, type Source } from './staging.js';
import type { PackageStore } from './store.js';

export interface StatusReportItem {
  id: string;
  manifestHash: string;
  state: ServerPackageState;
  bytesDone: number;
  bytesTotal: number;
  error?: string | undefined;
  nextRetryAt?: number | undefined;
  attempt?: number | undefined;
}

export interface Assignment {
  id: string;
  name: string;
  version: string;
  manifestHash: string;
  files: FileEntry[];
  sources: Source[];
}

export interface Codebase {
  url: string;
  kind: 'package-server' | 'core';
  serverId?: string;
  name?: string;
  reason: string;
}

const sumSize = (files: readonly FileEntry[]): number => files.reduce((n, f) => n + f.size, 0);

/**
 * The packages capability of the core: adding (uploads and drop folder), enabling with
 * staggered staging, per-server status, codebases for agents, assignments and status
 * reports of package servers, disabling and deleting. Mutations run one at a time.
 */
export class PackageService {
  /** Changes that must not interleave go through this, one at a time. */
  readonly #serial = serialRunner();
  readonly counters = { uploadedBytes: 0, servedBytes: 0, servedByPrincipal: {} as Record<string, number>, imports: 0 };

  constructor(
    readonly store: PackageStore,
    readonly content: ContentStore,
    private readonly ctx: CoreContext,
    private readonly config: PackagesConfig,
    private readonly log: Logger,
  ) {}

  // ------------------------------------------------------------ lookup

  /** A package by id, `name@version`, or name (its newest version). */
  resolve(ref: string): PackageRecord {
    const byId = this.store.packages.get(ref);
    if (byId) return byId;
    const at = ref.lastIndexOf('@');
    let found: PackageRecord | undefined;
    for (const p of this.store.packages.values()) {
      if (at > 0 ? p.name === ref.slice(0, at) && p.version === ref.slice(at + 1) : p.name === ref) {
        if (!found || p.createdAt > found.createdAt || (p.createdAt === found.createdAt && p.version > found.version)) found = p;
      }
    }
    if (!found) throw new OutpostError(PackageErrors.NOT_FOUND, `no package '${ref}'`, { status: 404, details: { package: ref } });
    return found;
  }

  fileOf(pkg: PackageRecord, path: string): FileEntry {
    const f = pkg.files.find((x) => x.path === path);
    if (!f) throw new OutpostError(PackageErrors.FILE_NOT_FOUND, `package ${pkg.name}@${pkg.version} has no file '${path}'`, { status: 404 });
    return f;
  }

  packageServers(): Map<string, PackageServerInfo> {
    const out = new Map<string, PackageServerInfo>();
    const reg = this.ctx.registry;
    for (const ss of reg.store.siteServers.values()) {
      const p = ss.services.package;
      if (!p) continue;
      out.set(ss.id, {
        id: ss.id,
        name: ss.name,
        constrained: p.constrained,
        url: p.url.replace(/\/+$/, ''),
        sites: reg.siteServerView(ss).effectiveSites,
        online: reg.siteServerOnline(ss.id),
      });
    }
    return out;
  }

  // ------------------------------------------------------------ adding

  /**
   * Creates a package from a manifest (or returns the existing one when name, version and
   * manifest are the same: re-running an interrupted `package add` resumes it).
   */
  create(input: { name: string; version?: string | undefined; files: FileEntry[] }, source: PackageRecord['source'] = 'upload'): Promise<{ pkg: PackageRecord; created: boolean }> {
    return this.#serial(async () => {
      const files = checkManifest(input.files, this.config);
      const hash = manifestHash(files);
      const version = input.version ?? defaultVersion(hash);
      const id = packageId(input.name, version);
      const existing = this.store.packages.get(id);
      if (existing) {
        if (existing.manifestHash === hash) return { pkg: existing, created: false };
        throw new OutpostError(PackageErrors.EXISTS, `package ${input.name}@${version} exists with other content; give another --version`, {
          status: 409,
          details: { id, manifestHash: existing.manifestHash },
        });
      }
      const pkg: PackageRecord = {
        id,
        name: input.name,
        version,
        files,
        manifestHash: hash,
        size: sumSize(files),
        state: 'incomplete',
        problems: {},
        source,
        createdAt: this.ctx.clock.now(),
        enabled: false,
        targets: [],
        maxServers: 0,
      };
      if (files.every((f) => this.content.has(f.sha256))) {
        pkg.state = 'ready';
        pkg.readyAt = pkg.createdAt;
      }
      await this.store.write(pkg);
      this.log.info({ package: id, name: pkg.name, version, files: files.length, bytes: pkg.size, state: pkg.state }, 'package created');
      return { pkg, created: true };
    });
  }

  /** One upload request for one file (see the README's upload protocol). */
  async upload(pkg: PackageRecord, path: string, offset: number, body: Readable, length: number | undefined): Promise<{ received: number; complete: boolean; package: PackageRecord['state'] }> {
    const file = this.fileOf(pkg, path);
    let result;
    try {
      result = await this.content.upload(file.sha256, file.size, offset, body, length);
      this.counters.uploadedBytes += Math.max(0, result.received - offset);
    } catch (err) {
      const code = isOutpostError(err) ? err.code : undefined;
      if (code === PackageErrors.UPLOAD_TOO_LARGE || code === PackageErrors.UPLOAD_TRUNCATED || code === PackageErrors.HASH_MISMATCH) {
        await this.#setProblem(pkg.id, path, `${code === PackageErrors.UPLOAD_TOO_LARGE ? 'oversized' : code === PackageErrors.UPLOAD_TRUNCATED ? 'truncated' : 'sha256 mismatch'}: ${(err as Error).message}`);
      }
      throw err;
    }
    const state = result.complete ? await this.#fileArrived(pkg.id, path) : (this.store.packages.get(pkg.id)?.state ?? 'incomplete');
    return { ...result, package: state };
  }

  #setProblem(id: string, path: string, problem: string | undefined): Promise<void> {
    return this.#serial(async () => {
      const pkg = this.store.packages.get(id);
      if (!pkg || pkg.problems[path] === problem) return;
      const problems = { ...pkg.problems };
      if (problem === undefined) delete problems[path];
      else problems[path] = problem;
      await this.store.write({ ...pkg, problems });
    });
  }

  /** A file is in: its package, and every other package waiting for the same content, may now be ready. */
  #fileArrived(id: string, path: string): Promise<PackageRecord['state']> {
    return this.#serial(async () => {
      const pkg = this.store.packages.get(id);
      if (!pkg) return 'incomplete';
      const sha = pkg.files.find((f) => f.path === path)?.sha256;
      const affected = [...this.store.packages.values()].filter((p) => p.id === id || (p.state !== 'ready' && p.files.some((f) => f.sha256 === sha)));
      for (const p of affected) {
        const problems = { ...p.problems };
        for (const f of p.files) if (f.sha256 === sha) delete problems[f.path];
        const ready = p.files.every((f) => this.content.has(f.sha256));
        const next: PackageRecord = { ...p, problems, state: ready ? 'ready' : 'incomplete', readyAt: ready ? (p.readyAt ?? this.ctx.clock.now()) : undefined };
        await this.store.write(next);
        if (ready && p.state !== 'ready') {
          this.log.info({ package: p.id, name: p.name, version: p.version }, 'package ready');
          if (next.enabled) await this.#release(next);
          // A package from upstream: the core is a new source for the servers still staging it.
          if (next.enabled && next.upstream !== undefined) this.#tickleStaging(next.id);
        }
      }
      return this.store.packages.get(id)?.state ?? 'incomplete';
    });
  }

  /**
   * A content file was found missing or damaged in the store: forget it, and every
   * package holding it is incomplete again (its problem says so) until it is uploaded
   * again (re-running `outpost package add` does it: the file is listed as missing).
   */
  contentLost(sha: string): Promise<void> {
    this.content.forget(sha);
    return this.#serial(async () => {
      for (const p of [...this.store.packages.values()]) {
        const lost = p.files.filter((f) => f.sha256 === sha);
        if (lost.length === 0) continue;
        const problems = { ...p.problems };
        for (const f of lost) problems[f.path] = 'content missing or damaged in the core store; upload it again';
        await this.store.write({ ...p, problems, state: 'incomplete', readyAt: undefined });
        this.log.error({ package: p.id, files: lost.map((f) => f.path), sha }, 'package content lost from the store; the package is incomplete until it is uploaded again');
      }
    });
  }

  // ------------------------------------------------------------ enable / disable / delete

  /**
   * How many child cores stage this core's enabled packages to their own package servers
   * (set by the hierarchy module): with any, an enable for all servers is accepted with
   * none here. A child applying its parent's enable passes `fromParent` for the same.
   */
  downstream: () => number = () => 0;

  /**
   * Where the unconstrained package servers of this core may fetch a package from upstream
   * (`upstream` set): the parent's ready package servers (set by the hierarchy module), put
   * ahead of this core in their assignments.
   */
  upstreamSources: (packageId: string) => Source[] = () => [];

  /** Marks a package a parent sent down as staged from upstream (its content need not be here). */
  markUpstream(id: string, core: string): Promise<PackageRecord | undefined> {
    return this.#serial(async () => {
      const pkg = this.store.packages.get(id);
      if (!pkg || pkg.upstream === core) return pkg;
      const next: PackageRecord = { ...pkg, upstream: core };
      await this.store.write(next);
      return next;
    });
  }

  #heldUpstream(pkg: PackageRecord): boolean {
    return pkg.upstream !== undefined && pkg.state !== 'ready' && this.upstreamSources(pkg.id).length === 0;
  }

  /**
   * The sources from upstream of a package changed: releases its staging when it was held
   * for want of one, and tickles the servers still staging it (they have a new source).
   */
  upstreamChanged(id: string): Promise<void> {
    return this.#serial(async () => {
      const pkg = this.store.packages.get(id);
      if (!pkg) return;
      await this.#release(pkg);
      this.#tickleStaging(id);
    });
  }

  #tickleStaging(id: string): void {
    const ids = [...this.store.statusOf(id).values()].filter((s) => s.released && s.state !== 'ready').map((s) => s.serverId);
    if (ids.length) this.ctx.tickle(ids, TickleFlags.PACKAGES);
  }

  /**
   * What a child core's package servers may fetch a package from here: the codebases of
   * this core's ready package servers (unconstrained first), and how many of its targets
   * are still staging it (a child waits for them before it falls back to this core).
   */
  upstreamOffer(id: string): { id: string; manifestHash: string; sources: Array<{ url: string; serverId: string }>; staging: number } | undefined {
    const pkg = this.store.packages.get(id);
    if (!pkg || !pkg.enabled || !stageable(pkg)) return undefined;
    const servers = this.packageServers();
    const status = this.store.statusOf(id);
    const ready = pkg.targets
      .map((sid) => ({ s: servers.get(sid), st: status.get(sid) }))
      .filter((x): x is { s: PackageServerInfo; st: ServerStatusRecord } => x.s !== undefined && x.st?.state === 'ready' && x.st.codebase !== undefined)
      .sort((a, b) => Number(a.s.constrained) - Number(b.s.constrained) || Number(b.s.online) - Number(a.s.online) || a.s.name.localeCompare(b.s.name));
    const staging = pkg.targets.filter((sid) => servers.has(sid) && status.get(sid)?.state !== 'ready' && status.get(sid)?.state !== 'failed').length;
    return { id, manifestHash: pkg.manifestHash, sources: ready.map((x) => ({ url: x.st.codebase!, serverId: x.s.id })), staging };
  }

  enable(
    ref: string,
    input: { servers?: string[] | undefined; site?: string | undefined; maxServers?: number | undefined; fromParent?: boolean },
  ): Promise<{ pkg: PackageRecord; warnings: string[] }> {
    return this.#serial(async () => {
      const pkg = this.resolve(ref);
      if (!stageable(pkg)) {
        throw new OutpostError(PackageErrors.NOT_READY, `package ${pkg.name}@${pkg.version} is not ready: ${Object.values(pkg.problems)[0] ?? 'files are still missing'}`, {
          status: 409,
          details: { problems: pkg.problems },
        });
      }
      const servers = this.packageServers();
      const children = this.downstream();
      const plan = planTargets([...servers.values()], input, { allowNone: input.fromParent === true || children > 0 });
      if (servers.size === 0 && children > 0) plan.warnings.push(`no package servers on this core: its ${children} child core(s) stage the package to theirs`);
      const old = this.store.statusOf(pkg.id);
      const removed = [...old.keys()].filter((id) => !plan.targets.includes(id));
      const now = this.ctx.clock.now();
      const fresh: ServerStatusRecord[] = plan.targets
        .filter((id) => !old.has(id))
        .map((serverId) => ({ packageId: pkg.id, serverId, released: false, state: 'pending', bytesDone: 0, bytesTotal: pkg.size, updatedAt: now }));
      const next: PackageRecord = {
        ...pkg,
        enabled: true,
        targets: plan.targets,
        maxServers: input.maxServers ?? this.config.defaultMaxServers,
        enabledAt: pkg.enabledAt ?? now,
      };
      await this.store.write(next, fresh, removed.map((serverId) => ({ packageId: pkg.id, serverId })));
      if (removed.length) this.ctx.tickle(removed, TickleFlags.PACKAGES);
      for (const w of plan.warnings) this.log.warn({ package: pkg.id }, w);
      await this.#release(next);
      this.log.info({ package: pkg.id, targets: plan.targets.length, maxServers: next.maxServers }, 'package enabled');
      return { pkg: next, warnings: plan.warnings };
    });
  }

  disable(ref: string): Promise<PackageRecord> {
    return this.#serial(async () => {
      const pkg = this.resolve(ref);
      const holders = [...this.store.statusOf(pkg.id).values()].filter((s) => s.released).map((s) => s.serverId);
      const next: PackageRecord = { ...pkg, enabled: false, targets: [], enabledAt: undefined };
      await this.store.write(next, [], [...this.store.statusOf(pkg.id).keys()].map((serverId) => ({ packageId: pkg.id, serverId })));
      this.ctx.tickle(holders, TickleFlags.PACKAGES);
      this.log.info({ package: pkg.id, servers: holders.length }, 'package disabled');
      return next;
    });
  }

  /** Deletes a package everywhere; content no other package holds is freed now. */
  delete(ref: string): Promise<{ freedBytes: number }> {
    return this.#serial(async () => {
      const pkg = this.resolve(ref);
      const holders = [...this.store.statusOf(pkg.id).values()].filter((s) => s.released).map((s) => s.serverId);
      await this.store.deletePackage(pkg.id);
      const stillUsed = new Set<string>();
      for (const p of this.store.packages.values()) for (const f of p.files) stillUsed.add(f.sha256);
      let freedBytes = 0;
      for (const sha of new Set(pkg.files.map((f) => f.sha256))) if (!stillUsed.has(sha)) freedBytes += await this.content.remove(sha);
      this.ctx.tickle(holders, TickleFlags.PACKAGES);
      this.log.info({ package: pkg.id, freedBytes }, 'package deleted');
      return { freedBytes };
    });
  }

  /** Releases the next wave; tickles the servers released. Caller holds the chain. */
  async #release(pkg: PackageRecord): Promise<void> {
    if (!pkg.enabled || !stageable(pkg)) return;
    // From upstream: held until there is a source (the parent's package servers, or this core once it holds the content).
    if (this.#heldUpstream(pkg)) return;
    const status = this.store.statusOf(pkg.id);
    const ids = nextReleases(pkg.targets, status, this.packageServers(), pkg.maxServers);
    if (ids.length === 0) return;
    const now = this.ctx.clock.now();
    const puts = ids.map((serverId): ServerStatusRecord => ({
      ...(status.get(serverId) ?? { packageId: pkg.id, serverId, state: 'pending', bytesDone: 0, bytesTotal: pkg.size, updatedAt: now }),
      released: true,
      releasedAt: now,
      updatedAt: now,
    }));
    await this.store.write(undefined, puts);
    this.ctx.tickle(ids, TickleFlags.PACKAGES);
    // One line per package server released, with the names its own log lines carry.
    const servers = this.packageServers();
    for (const serverId of ids) this.log.info({ package: pkg.id, server: servers.get(serverId)?.name, serverId }, 'staging released');
  }

  // ------------------------------------------------------------ package servers

  /** What a package server should hold, with where it may fetch each package from. */
  assignments(serverId: string): { serial: string; pollIntervalMs: number; items: Assignment[] } {
    const servers = this.packageServers();
    const me = servers.get(serverId);
    const items: Assignment[] = [];
    if (me) {
      for (const pkg of this.store.packages.values()) {
        if (!pkg.enabled || !stageable(pkg)) continue;
        const status = this.store.statusOf(pkg.id);
        if (!status.get(serverId)?.released) continue;
        // The core is a source only while it holds the content (a package from upstream may not).
        const coreFiles = pkg.state === 'ready' ? `${this.ctx.url()}/api/v1/packages/${pkg.id}/files` : undefined;
        items.push({
          id: pkg.id,
          name: pkg.name,
          version: pkg.version,
          manifestHash: pkg.manifestHash,
          files: pkg.files,
          sources: sourcesFor(me, pkg.id, pkg.targets, status, servers, coreFiles, pkg.upstream !== undefined ? this.upstreamSources(pkg.id) : []),
        });
      }
    }
    items.sort((a, b) => (a.id < b.id ? -1 : 1));
    const serial = createHash('sha256').update(JSON.stringify(items.map((i) => [i.id, i.manifestHash, i.sources.map((s) => s.url)]))).digest('hex').slice(0, 16);
    return { serial, pollIntervalMs: this.config.assignmentPollInterval, items };
  }

  /** A package server's report: state per package; ready means its codebase is live. */
  report(serverId: string, items: StatusReportItem[]): Promise<{ unknown: string[] }> {
    return this.#serial(async () => {
      const servers = this.packageServers();
      const me = servers.get(serverId);
      const unknown: string[] = [];
      const puts: ServerStatusRecord[] = [];
      const touched = new Set<PackageRecord>();
      const tickle = new Set<string>();
      const now = this.ctx.clock.now();
      for (const item of items) {
        const pkg = this.store.packages.get(item.id);
        const st = pkg ? this.store.statusOf(pkg.id).get(serverId) : undefined;
        if (!me || !pkg || !pkg.enabled || !st?.released || pkg.manifestHash !== item.manifestHash) {
          unknown.push(item.id);
          continue;
        }
        const next: ServerStatusRecord = {
          ...st,
          state: item.state,
          bytesDone: item.bytesDone,
          bytesTotal: item.bytesTotal,
          error: item.error,
          nextRetryAt: item.nextRetryAt,
          attempt: item.attempt,
          codebase: item.state === 'ready' ? `${me.url}/packages/${pkg.id}` : undefined,
          readyAt: item.state === 'ready' ? (st.state === 'ready' ? st.readyAt : now) : undefined,
          updatedAt: now,
        };
        if (JSON.stringify({ ...next, updatedAt: 0 }) === JSON.stringify({ ...st, updatedAt: 0 })) continue;
        puts.push(next);
        touched.add(pkg);
        if (next.state === 'ready' && st.state !== 'ready') {
          this.log.info({ package: pkg.id, server: me.name, serverId, codebase: next.codebase }, 'codebase reported');
          // A new source: wake the servers still waiting for one.
          for (const [id, other] of this.store.statusOf(pkg.id)) {
            if (id !== serverId && other.released && other.state !== 'ready') tickle.add(id);
          }
        }
        if (st.state === 'ready' && next.state !== 'ready') this.log.warn({ package: pkg.id, server: me.name, serverId, error: next.error }, 'codebase withdrawn');
        if (next.state === 'failed' && (st.state !== 'failed' || st.attempt !== next.attempt)) this.log.warn({ package: pkg.id, server: me.name, serverId, error: next.error, attempt: next.attempt, nextRetryAt: next.nextRetryAt }, 'staging failed on a package server');
      }
      if (puts.length) await this.store.write(undefined, puts);
      for (const pkg of touched) await this.#release(pkg);
      if (tickle.size) this.ctx.tickle(tickle, TickleFlags.PACKAGES);
      return { unknown };
    });
  }

  // ------------------------------------------------------------ agents

  /** Codebases for an agent, closest first; the core last when allowed. */
  codebases(pkg: PackageRecord, agentId: string | undefined): Codebase[] {
    const status = this.store.statusOf(pkg.id);
    const servers = this.packageServers();
    const out: Codebase[] = [];
    const listed = new Set<string>();
    const add = (id: string, reason: string): void => {
      const st = status.get(id);
      const s = servers.get(id);
      if (listed.has(id) || !s || st?.state !== 'ready' || !st.codebase) return;
      listed.add(id);
      out.push({ url: st.codebase, kind: 'package-server', serverId: id, name: s.name, reason });
    };
    if (agentId !== undefined) {
      const { reason, servers: ordered } = this.ctx.registry.selection(agentId, 'package');
      for (const c of ordered) add(c.record.id, reason);
    }
    const rest = [...servers.values()].sort((a, b) => Number(a.constrained) - Number(b.constrained) || Number(b.online) - Number(a.online) || a.name.localeCompare(b.name));
    for (const s of rest) add(s.id, 'other');
    if (this.config.serveAgents && pkg.state === 'ready') out.push({ url: `${this.ctx.url()}/api/v1/packages/${pkg.id}/files`, kind: 'core', reason: 'core' });
    return out;
  }

  async recordDownload(d: DownloadRecord): Promise<void> {
    await this.store.putDownload(d);
  }

  // ------------------------------------------------------------ views

  summary(pkg: PackageRecord): Record<string, unknown> {
    const status = [...this.store.statusOf(pkg.id).values()];
    const count = (s: ServerPackageState): number => status.filter((x) => x.state === s && x.released).length;
    return {
      id: pkg.id,
      name: pkg.name,
      version: pkg.version,
      manifestHash: pkg.manifestHash,
      files: pkg.files.length,
      size: pkg.size,
      state: pkg.state,
      enabled: pkg.enabled,
      servers: { total: status.length, ready: count('ready'), downloading: count('downloading'), pending: status.length - count('ready') - count('downloading') - count('failed'), failed: count('failed') },
      createdAt: new Date(pkg.createdAt).toISOString(),
    };
  }

  async view(pkg: PackageRecord): Promise<Record<string, unknown>> {
    const servers = this.packageServers();
    const status = this.store.statusOf(pkg.id);
    const missing: { path: string; size: number; received: number; problem?: string }[] = [];
    if (pkg.state !== 'ready') {
      for (const f of pkg.files) {
        if (this.content.has(f.sha256)) continue;
        if (missing.length >= 1000) break;
        missing.push({ path: f.path, size: f.size, received: await this.content.received(f.sha256), ...(pkg.problems[f.path] ? { problem: pkg.problems[f.path] } : {}) });
      }
    }
    const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());
    const downloads = [...(this.store.downloads.get(pkg.id) ?? new Map<string, DownloadRecord>()).values()];
    return {
      id: pkg.id,
      name: pkg.name,
      version: pkg.version,
      manifestHash: pkg.manifestHash,
      files: pkg.files.length,
      size: pkg.size,
      state: pkg.state,
      ...(Object.keys(pkg.problems).length ? { problems: pkg.problems } : {}),
      ...(missing.length ? { missing } : {}),
      source: pkg.source,
      ...(pkg.upstream !== undefined ? { upstream: pkg.upstream } : {}),
      createdAt: iso(pkg.createdAt),
      readyAt: iso(pkg.readyAt),
      enabled: pkg.enabled,
      maxServers: pkg.maxServers,
      enabledAt: iso(pkg.enabledAt),
      servers: pkg.targets.map((id) => {
        const s = servers.get(id);
        const st = status.get(id);
        const wait = s && st && !st.released ? (this.#heldUpstream(pkg) ? "a source: the parent's package servers, or this core to fetch it" : waitingFor(s, pkg.targets, status, servers)) : undefined;
        return {
          id,
          name: s?.name,
          constrained: s?.constrained,
          sites: s?.sites,
          state: st?.state ?? 'pending',
          released: st?.released ?? false,
          ...(wait ? { waitingFor: wait } : !st?.released && pkg.enabled ? { waitingFor: 'a free staging slot' } : {}),
          bytesDone: st?.bytesDone ?? 0,
          bytesTotal: st?.bytesTotal ?? pkg.size,
          ...(st?.error ? { lastError: st.error } : {}),
          ...(st?.nextRetryAt ? { nextRetryAt: iso(st.nextRetryAt) } : {}),
          ...(st?.attempt ? { attempt: st.attempt } : {}),
          ...(st?.codebase ? { codebase: st.codebase } : {}),
          ...(st?.readyAt ? { readyAt: iso(st.readyAt) } : {}),
          updatedAt: iso(st?.updatedAt),
        };
      }),
      downloads: {
        ok: downloads.filter((d) => d.state === 'ok').length,
        failed: downloads.filter((d) => d.state === 'failed').length,
        recent: downloads.sort((a, b) => b.at - a.at).slice(0, 20).map((d) => ({ ...d, at: iso(d.at) })),
      },
    };
  }
}
