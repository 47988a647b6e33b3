import type { BatchOp, Logger } from '@outpost/common';
import type { AgentRecord } from '../model.js';
import type { Registry } from '../registry.js';
import type { PackageService } from '../packages/service.js';
import type { Summary } from './model.js';
import { HierarchyStore } from './store.js';

/**
 * An agent's last contact goes up rounded down to this: every agent of a busy estate is in
 * touch all the time, and a resolution of a minute rewrote (and sent up) each online agent's
 * summary every minute: 75,000 agents were 1,250 writes/s on the parent for nothing a parent
 * shows. Its state (online, poll-only, offline) still goes up as it changes.
 */
export const CONTACT_RESOLUTION = 10 * 60_000;
const PAGE = 2_000;

/** What an agent's summary was made from: when none of it changed, the summary did not either. */
interface AgentInputs {
  rec: AgentRecord;
  sites: string;
  state: string;
  bucket: number | undefined;
}

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
  /** Per agent id, what its summary was last made from (the registry replaces a record when it changes). */
  readonly #inputs = new Map<string, AgentInputs>();
  /** The last tick did not finish its writes: the next one rebuilds every agent's summary. */
  #failed = false;
  #loaded = false;

  constructor(private readonly deps: SummaryDeps) {}

  /**
   * The summaries as they are now, by key. With `unchanged`, an agent whose record, sites,
   * state and contact (to {@link CONTACT_RESOLUTION}) are what they were at the last call is
   * not summarised again: its key goes into `unchanged` instead (a tick at 25,000 agents
   * was a fifth of a child core's CPU when every agent was rebuilt and serialised).
   */
  current(unchanged?: Set<string>): Map<string, Summary> {
    const { registry: reg, selfId: core } = this.deps;
    const out = new Map<string, Summary>();
    const key = (kind: string, id: string): string => `${core}!${kind}!${id}`;
    const add = (s: Summary): void => void out.set(key(s.kind, s.id), s);
    let online = 0;
    for (const a of reg.store.agents.values()) {
      const state = reg.agentState(a.id);
      if (state === 'online') online++;
      const c = reg.store.contacts.get(a.id);
      const sites = reg.agentSites(a.id);
      const inputs: AgentInputs = { rec: a, sites: sites.join('\n'), state, bucket: c ? Math.floor(c.last / CONTACT_RESOLUTION) * CONTACT_RESOLUTION : undefined };
      const was = this.#inputs.get(a.id);
      this.#inputs.set(a.id, inputs);
      if (unchanged && was && was.rec === inputs.rec && was.sites === inputs.sites && was.state === state && was.bucket === inputs.bucket) {
        unchanged.add(key('agent', a.id));
        continue;
      }
      add({ core, kind: 'agent', id: a.id, name: a.name, os: a.os, macs: a.macs, sites, state, lastContact: inputs.bucket === undefined ? undefined : new Date(inputs.bucket).toISOString() });
    }
    if (this.#inputs.size > reg.store.agents.size) for (const id of [...this.#inputs.keys()]) if (!reg.store.agents.has(id)) this.#inputs.delete(id);
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
    if (this.#failed) {
      // What the failed tick noted as written may not be: start again from the store.
      this.#last.clear();
      this.#loaded = false;
    }
    if (!this.#loaded) {
      for (const [k, v] of await store.list(store.up, `${selfId}!`)) this.#last.set(k, JSON.stringify(v));
      this.#loaded = true;
    }
    // Agents unchanged since the last tick are not rebuilt; after a failed write, every one is.
    const unchanged = new Set<string>();
    const now = this.current(this.#failed ? undefined : unchanged);
    this.#failed = true;
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
      if (now.has(k) || unchanged.has(k)) continue;
      ops.push(store.del(store.up, k));
      this.#last.delete(k);
      if (ops.length >= PAGE) await flush();
    }
    await flush();
    this.#failed = false;
    return n;
  }
}
