import type { CoreContext, CoreModule } from '../module.js';
import { PackageService } from '../packages/service.js';
import { Runs } from '../tasks/runs.js';
import { runState } from '../tasks/summary.js';
import type { Counts } from '../tasks/model.js';

/** Most site servers, runs and packages one snapshot lists (the counts cover all). */
const MAX_SERVERS = 500;
const MAX_ACTIVE_RUNS = 100;
const MAX_RECENT_RUNS = 20;
const MAX_PACKAGES = 200;

export interface LiveRun {
  id: string;
  job: string;
  state: ReturnType<typeof runState>;
  agents: number;
  counts: Counts;
  failures: Array<{ error: string; count: number }>;
  createdAt: string;
  finishedAt?: string;
}

export interface LiveStagingServer {
  id: string;
  name: string;
  ready: number;
  downloading: number;
  pending: number;
  failed: number;
  bytesDone: number;
  bytesTotal: number;
  /** The soonest retry of a failed package. */
  nextRetryAt?: string;
}

export interface LiveAlarm {
  severity: 'error' | 'warning';
  text: string;
  /** Console route that shows it (`#/runs/ID`). */
  href?: string;
}

/**
 * What the console's live feed sends: counts and progress aggregated on the server, so
 * a run over 50,000 agents is a handful of numbers, never a list of agents.
 */
export interface LiveSnapshot {
  agents: { total: number; online: number; 'poll-only': number; offline: number };
  siteServers: {
    total: number;
    online: number;
    offline: number;
    items: Array<{ id: string; name: string; state: 'online' | 'offline'; services: string[]; agents: number; lastContact?: string }>;
  };
  sites: number;
  runs: { active: number; total: number; items: LiveRun[] };
  staging: {
    servers: LiveStagingServer[];
    packages: Array<{ id: string; name: string; version: string; state: string; enabled: boolean; size: number; ready: number; downloading: number; pending: number; failed: number; targets: number }>;
  };
  /** Counters of the other core modules (`boot`, `ca`, ...) as their `stats()` give them. */
  modules: Record<string, Record<string, unknown>>;
  alarms: LiveAlarm[];
}

const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());

function runsOf(m: CoreModule | undefined): Runs | undefined {
  const r = m && 'runs' in m ? (m as { readonly runs: unknown }).runs : undefined;
  return r instanceof Runs ? r : undefined;
}

function packagesOf(m: CoreModule | undefined): PackageService | undefined {
  const s = m && 'service' in m ? (m as { readonly service: unknown }).service : undefined;
  return s instanceof PackageService ? s : undefined;
}

/** Builds snapshots; module stats are read at most every `moduleStatsMs`. */
export class SnapshotBuilder {
  #moduleStats: { at: number; value: Record<string, Record<string, unknown>> } = { at: -Infinity, value: {} };

  constructor(
    private readonly ctx: CoreContext,
    private readonly moduleStatsMs = 2_000,
  ) {}

  build(): LiveSnapshot {
    const now = this.ctx.clock.now();
    const alarms: LiveAlarm[] = [];
    const snap: LiveSnapshot = {
      agents: this.#agents(),
      siteServers: this.#siteServers(alarms),
      sites: this.ctx.registry.store.sites.size,
      runs: this.#runs(alarms),
      staging: this.#staging(alarms),
      modules: this.#modules(now),
      alarms,
    };
    if (snap.agents.total > 0 && snap.agents.offline === snap.agents.total) alarms.push({ severity: 'warning', text: 'every agent is offline', href: '#/agents?state=offline' });
    return snap;
  }

  /**
   * What a site-scoped administrator may see of a snapshot: its own sites' agents (counted
   * again), site servers and runs; package staging and module counters stay (they belong
   * to no site). Alarms are rebuilt from what is left.
   */
  scoped(snap: LiveSnapshot, scope: readonly string[]): LiveSnapshot {
    const reg = this.ctx.registry;
    const inScope = (sites: readonly string[] | undefined) => (sites ?? []).some((s) => scope.includes(s));
    const agents = { total: 0, online: 0, 'poll-only': 0, offline: 0 };
    for (const id of reg.store.agents.keys()) {
      if (!inScope(reg.agentSites(id))) continue;
      agents.total++;
      agents[reg.agentState(id)]++;
    }
    const servers = snap.siteServers.items.filter((s) => {
      const ss = reg.store.siteServers.get(s.id);
      return ss !== undefined && inScope(ss.sites);
    });
    const runs = runsOf(this.ctx.module('tasks'));
    const runItems = snap.runs.items.filter((r) => inScope(runs?.runs.get(r.id)?.sites));
    const visibleHref = (href: string | undefined) => href === undefined || !/^#\/(runs|site-servers)\//.test(href) || [...runItems, ...servers].some((x) => href.endsWith(`/${x.id}`));
    return {
      ...snap,
      agents,
      siteServers: { total: servers.length, online: servers.filter((s) => s.state === 'online').length, offline: servers.filter((s) => s.state === 'offline').length, items: servers },
      sites: scope.filter((s) => reg.store.sites.has(s)).length,
      runs: { active: runItems.filter((r) => r.state === 'active').length, total: runItems.length, items: runItems },
      alarms: snap.alarms.filter((a) => visibleHref(a.href)),
    };
  }

  #agents(): LiveSnapshot['agents'] {
    const reg = this.ctx.registry;
    const out = { total: reg.store.agents.size, online: 0, 'poll-only': 0, offline: 0 };
    for (const id of reg.store.agents.keys()) out[reg.agentState(id)]++;
    return out;
  }

  #siteServers(alarms: LiveAlarm[]): LiveSnapshot['siteServers'] {
    const reg = this.ctx.registry;
    const out: LiveSnapshot['siteServers'] = { total: reg.store.siteServers.size, online: 0, offline: 0, items: [] };
    for (const ss of reg.store.siteServers.values()) {
      const online = reg.siteServerOnline(ss.id);
      if (online) out.online++;
      else out.offline++;
      if (out.items.length >= MAX_SERVERS) continue;
      const v = reg.siteServerView(ss);
      const services = Object.entries(ss.services)
        .filter(([, s]) => s !== undefined)
        .map(([k]) => k);
      out.items.push({ id: ss.id, name: ss.name, state: v.state, services, agents: v.load.agents, ...(v.lastContact ? { lastContact: v.lastContact } : {}) });
      if (!online) alarms.push({ severity: 'error', text: `site server ${ss.name} is offline`, href: `#/site-servers` });
      else if (v.health?.status === 'degraded') alarms.push({ severity: 'warning', text: `site server ${ss.name} is degraded${v.health.problems?.length ? `: ${v.health.problems[0]}` : ''}`, href: `#/site-servers` });
    }
    out.items.sort((a, b) => (a.state === b.state ? a.name.localeCompare(b.name) : a.state === 'offline' ? -1 : 1));
    return out;
  }

  #runs(alarms: LiveAlarm[]): LiveSnapshot['runs'] {
    const runs = runsOf(this.ctx.module('tasks'));
    if (!runs) return { active: 0, total: 0, items: [] };
    const all = [...runs.runs.values()].sort((a, b) => b.createdAt - a.createdAt);
    const active = all.filter((r) => r.finishedAt === undefined);
    const recent = all.filter((r) => r.finishedAt !== undefined).slice(0, MAX_RECENT_RUNS);
    const items = [...active.slice(0, MAX_ACTIVE_RUNS), ...recent].map((r): LiveRun => {
      const failures = Object.entries(r.failures)
        .map(([error, count]) => ({ error, count }))
        .sort((a, b) => b.count - a.count)
        .slice(0, 10);
      return { id: r.id, job: r.job, state: runState(r), agents: r.agents, counts: r.counts, failures, createdAt: iso(r.createdAt)!, ...(r.finishedAt ? { finishedAt: iso(r.finishedAt)! } : {}) };
    });
    for (const r of items) if (r.counts.failed > 0 && r.state === 'active') alarms.push({ severity: 'warning', text: `run ${r.id} (${r.job}): ${r.counts.failed} agents failed`, href: `#/runs/${r.id}` });
    return { active: active.length, total: all.length, items };
  }

  #staging(alarms: LiveAlarm[]): LiveSnapshot['staging'] {
    const svc = packagesOf(this.ctx.module('packages'));
    if (!svc) return { servers: [], packages: [] };
    const servers = new Map<string, LiveStagingServer>();
    for (const [id, s] of svc.packageServers()) servers.set(id, { id, name: s.name, ready: 0, downloading: 0, pending: 0, failed: 0, bytesDone: 0, bytesTotal: 0 });
    const packages: LiveSnapshot['staging']['packages'] = [];
    const all = [...svc.store.packages.values()].sort((a, b) => b.createdAt - a.createdAt);
    for (const pkg of all) {
      const status = svc.store.statusOf(pkg.id);
      const row = { id: pkg.id, name: pkg.name, version: pkg.version, state: pkg.state, enabled: pkg.enabled, size: pkg.size, ready: 0, downloading: 0, pending: 0, failed: 0, targets: pkg.targets.length };
      for (const serverId of pkg.targets) {
        const st = status.get(serverId);
        const state = st?.state ?? 'pending';
        row[state]++;
        const srv = servers.get(serverId);
        if (!srv) continue;
        srv[state]++;
        srv.bytesDone += st?.bytesDone ?? 0;
        srv.bytesTotal += st?.bytesTotal ?? pkg.size;
        if (st?.nextRetryAt !== undefined && st.state === 'failed') {
          const at = iso(st.nextRetryAt)!;
          if (srv.nextRetryAt === undefined || at < srv.nextRetryAt) srv.nextRetryAt = at;
        }
      }
      if (row.failed > 0) alarms.push({ severity: 'warning', text: `package ${pkg.name}@${pkg.version}: ${row.failed} servers failed to stage it`, href: `#/packages/${pkg.id}` });
      if (packages.length < MAX_PACKAGES) packages.push(row);
    }
    return { servers: [...servers.values()].sort((a, b) => a.name.localeCompare(b.name)), packages };
  }

  #modules(now: number): LiveSnapshot['modules'] {
    if (now - this.#moduleStats.at < this.moduleStatsMs) return this.#moduleStats.value;
    const value: Record<string, Record<string, unknown>> = {};
    for (const name of ['boot', 'ca']) {
      const m = this.ctx.module(name);
      if (m?.stats) value[name] = m.stats();
    }
    this.#moduleStats = { at: now, value };
    return value;
  }
}
