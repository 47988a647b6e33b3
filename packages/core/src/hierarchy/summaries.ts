import type { BatchOp, Logger } from '@outpost/common';
import type { Registry } from '../registry.js';
import type { PackageService } from '../packages/service.js';
import type { Summary } from './model.js';
import { HierarchyStore } from './store.js';

const MINUTE = 60_000;
const PAGE = 2_000;

export interface SummaryDeps {
  selfId: string;
  name: string;
  store: HierarchyStore;
  registry: Registry;
  packages(): PackageService | undefined;
  /** Whether a package is one the parent owns (its status per server goes up). */
  replicated(packageId: string): boolean;
  log: Logger;
  now(): number;
}

/**
 * What a child tells its parent about itself: one summary per site, site server and agent
 * (state, last contact to the minute, OS, sites, MACs) and the status of the parent's
 * packages on each of its package servers. Written as `hier-up` records only when they
 * changed (so a steady estate sends nothing), and sent up with the journal.
 */
export class Summaries {
  readonly #last = new Map<string, string>();
  #loaded = false;

  constructor(private readonly deps: SummaryDeps) {}

  /** The summaries as they are now, by key. */
  current(): Map<string, Summary> {
    const { registry: reg, selfId: core } = this.deps;
    const out = new Map<string, Summary>();
    const add = (s: Summary): void => void out.set(`${core}!${s.kind}!${s.id}`, s);
    let online = 0;
    for (const a of reg.store.agents.values()) {
      const v = reg.agentView(a);
      if (v.state === 'online') online++;
      const last = v.lastContact ? new Date(Math.floor(Date.parse(v.lastContact) / MINUTE) * MINUTE).toISOString() : undefined;
      add({ core, kind: 'agent', id: a.id, name: a.name, os: a.os, macs: a.macs, sites: v.sites, state: v.state, lastContact: last });
    }
    for (const s of reg.store.sites.values()) add({ core, kind: 'site', id: s.name, subnets: s.subnets });
    for (const ss of reg.store.siteServers.values()) {
      add({ core, kind: 'site-server', id: ss.id, name: ss.name, sites: ss.sites, services: Object.keys(ss.services), state: reg.siteServerOnline(ss.id) ? 'online' : 'offline' });
    }
    const svc = this.deps.packages();
    if (svc) {
      for (const pkg of svc.store.packages.values()) {
        if (!this.deps.replicated(pkg.id)) continue;
        const servers = [...svc.store.statusOf(pkg.id).values()].map((st) => ({ server: st.serverId, name: reg.store.siteServers.get(st.serverId)?.name, state: st.state, bytesDone: st.bytesDone, bytesTotal: st.bytesTotal }));
        // From upstream: the core need not hold the content ('incomplete'); its servers say where it is.
        add({ core, kind: 'package', id: pkg.id, name: pkg.name, version: pkg.version, state: pkg.state, enabled: pkg.enabled, ...(pkg.upstream !== undefined ? { upstream: true } : {}), servers });
      }
    }
    add({ core, kind: 'core', id: core, name: this.deps.name, agents: reg.store.agents.size, online, sites: reg.store.sites.size, siteServers: reg.store.siteServers.size });
    return out;
  }

  /** Writes what changed since the last time; returns how many records. */
  async tick(): Promise<number> {
    const { store, selfId } = this.deps;
    if (!this.#loaded) {
      for (const [k, v] of await store.list(store.up, `${selfId}!`)) this.#last.set(k, JSON.stringify(v));
      this.#loaded = true;
    }
    const now = this.current();
    let ops: BatchOp[] = [];
    let n = 0;
    const flush = async (): Promise<void> => {
      await store.write(ops);
      n += ops.length;
      ops = [];
    };
    for (const [k, s] of now) {
      const text = JSON.stringify(s);
      if (this.#last.get(k) === text) continue;
      ops.push(store.put(store.up, k, s));
      this.#last.set(k, text);
      if (ops.length >= PAGE) await flush();
    }
    for (const k of [...this.#last.keys()]) {
      if (now.has(k)) continue;
      ops.push(store.del(store.up, k));
      this.#last.delete(k);
      if (ops.length >= PAGE) await flush();
    }
    await flush();
    return n;
  }
}
