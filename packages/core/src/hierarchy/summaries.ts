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
/**
 * A tick checks one agent in this many (new agents at once): at the default 2 s interval a
 * change of an agent's summary goes up within 10 s, and a tick at 25,000 agents checks 5,000.
 */
export const AGENT_SLICES = 5;

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

/** What an agent's summary was made from: when none of it changed, the summary did not either. */
interface AgentInputs {
  rec: AgentRecord;
  /** The registry's sites array (compared by reference first) and its text. */
  sitesRef: readonly string[];
  sites: string;
  state: string;
  bucket: number | undefined;
}

/**
 * What a child tells its parent about itself: one summary per site, site server and agent
 * (state, last contact to {@link CONTACT_RESOLUTION}, OS, sites, MACs) and the status of the
 * parent's packages on each of its package servers. Written as `hier-up` records only when
 * they changed (so a steady estate sends nothing), and sent up with the journal.
 *
 * A tick does not rebuild every agent's summary: it checks one slice of {@link AGENT_SLICES}
 * of the agent ids taken when a round starts (and new agents), and an agent whose record (the
 * registry replaces a record when it changes), sites, state and contact bucket are what they
 * were is skipped with a few comparisons, no allocation. Gone agents are looked for once a
 * round, or when the count changed. At 25,000 agents, rebuilding and serialising each one every
 * tick was a fifth of a child core's CPU during a run, and still visiting every agent to skip
 * four in five was 2.5 s of a child core's 13.7 s of CPU samples in a run of 25,000 agents. The first tick (and the one after a failed write) compares
 * everything with what the store holds.
 */
export class Summaries {
  /** The JSON text written last, by key (agents included). */
  readonly #last = new Map<string, string>();
  readonly #inputs = new Map<string, AgentInputs>();
  #tick = 0;
  /** The keys of the last tick's summaries other than agents' (a few). */
  #otherKeys = new Set<string>();
  /** Agents online as last checked (the core's summary). */
  #online = 0;
  /** The next tick compares every summary with the store (the first, and after a failed write). */
  #full = true;
  /** The agent ids of this round (taken when a round starts or the count changes). */
  #ids: string[] | undefined;

  constructor(private readonly deps: SummaryDeps) {}

  /** The summaries of everything but agents (a few), by key. */
  #others(online: number): Map<string, Summary> {
    const { registry: reg, selfId: core } = this.deps;
    const out = new Map<string, Summary>();
    const add = (s: Summary): void => void out.set(`${core}!${s.kind}!${s.id}`, s);
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
    const { store, selfId: core, registry: reg } = this.deps;
    const full = this.#full;
    if (full) {
      // What a failed tick noted as written may not be: start again from the store.
      this.#last.clear();
      this.#inputs.clear();
      this.#online = 0;
      for (const [k, v] of await store.list(store.up, `${core}!`)) this.#last.set(k, JSON.stringify(v));
    }
    this.#full = true;
    const tick = ++this.#tick;
    let ops: BatchOp[] = [];
    let n = 0;
    const flush = async (): Promise<void> => {
      await store.write(ops);
      n += ops.length;
      ops = [];
    };
    /** Queues a summary's write when its text changed (sync: most calls write nothing). */
    const put = (k: string, s: Summary): void => {
      const text = JSON.stringify(s);
      if (this.#last.get(k) === text) return;
      ops.push(store.put(store.up, k, s));
      this.#last.set(k, text);
    };
    const del = (k: string): void => {
      if (!this.#last.delete(k)) return;
      ops.push(store.del(store.up, k));
    };

    // One agent in AGENT_SLICES (every one on a full tick, and any not seen yet): a slice of
    // the id list taken at the start of each round, so a tick touches only its slice.
    const agents = reg.store.agents;
    const round = full || this.#ids === undefined || tick % AGENT_SLICES === 0;
    let ids = this.#ids;
    if (ids === undefined || round || agents.size !== ids.length) ids = this.#ids = [...agents.keys()];
    const per = Math.ceil(ids.length / AGENT_SLICES);
    const [from, to] = full ? [0, ids.length] : [(tick % AGENT_SLICES) * per, Math.min(ids.length, (tick % AGENT_SLICES) * per + per)];
    const check = (a: AgentRecord): void => {
      const was = this.#inputs.get(a.id);
      const state = reg.agentState(a.id);
      const c = reg.store.contacts.get(a.id);
      const bucket = c ? Math.floor(c.last / CONTACT_RESOLUTION) * CONTACT_RESOLUTION : undefined;
      const sitesRef = reg.agentSites(a.id);
      if (was && was.rec === a && was.state === state && was.bucket === bucket && (was.sitesRef === sitesRef || was.sites === sitesRef.join('\n'))) {
        was.sitesRef = sitesRef;
        return;
      }
      this.#online += Number(state === 'online') - Number(was?.state === 'online');
      this.#inputs.set(a.id, { rec: a, sitesRef, sites: sitesRef.join('\n'), state, bucket });
      put(`${core}!agent!${a.id}`, { core, kind: 'agent', id: a.id, name: a.name, os: a.os, macs: a.macs, sites: sitesRef, state, lastContact: bucket === undefined ? undefined : new Date(bucket).toISOString() });
    };
    for (let i = from; i < to; i++) {
      const a = agents.get(ids[i]!);
      if (!a) continue;
      check(a);
      if (ops.length >= PAGE) await flush();
    }
    // Agents not seen yet go at once (only when the count changed: the list was just taken).
    if (this.#inputs.size !== agents.size) {
      for (const a of agents.values()) {
        if (this.#inputs.has(a.id)) continue;
        check(a);
        if (ops.length >= PAGE) await flush();
      }
    }
    // Agents gone: looked for once a round (and when the count changed).
    if (round || this.#inputs.size !== agents.size) {
      for (const [id, inputs] of this.#inputs) {
        if (agents.has(id)) continue;
        this.#inputs.delete(id);
        this.#online -= Number(inputs.state === 'online');
        del(`${core}!agent!${id}`);
        if (ops.length >= PAGE) await flush();
      }
    }
    const others = this.#others(this.#online);
    for (const [k, s] of others) put(k, s);
    const agentPrefix = `${core}!agent!`;
    if (full) {
      // Summaries the store holds of agents (and anything else) this core no longer has.
      for (const k of [...this.#last.keys()]) if (!others.has(k) && !(k.startsWith(agentPrefix) && this.#inputs.has(k.slice(agentPrefix.length)))) del(k);
    } else {
      for (const k of this.#otherKeys) if (!others.has(k)) del(k);
    }
    this.#otherKeys = new Set(others.keys());
    await flush();
    this.#full = false;
    return n;
  }
}
