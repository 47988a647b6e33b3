import { allValues, sublevel, type BatchOp, type Database, type Sublevel } from '@outpost/common';
import type { AgentRecord, ContactRecord, SiteRecord, SiteServerRecord, TokenRecord } from './model.js';
import { asOfNow } from './store-backend.js';

type Op = BatchOp;

/**
 * The core's database: one sublevel per entity plus secondary indexes, all loaded into
 * memory at start (they are small: 100,000 agents are ~50 MB) and written through.
 * Every record goes to disk in one batch with its index entries, so a crash at any
 * instant leaves records and indexes in agreement.
 *
 * Indexes: `subnets` (CIDR → site name) and `agent-macs` (`mac!agentId` → agentId).
 */
export class CoreStore {
  readonly tokens = new Map<string, TokenRecord>();
  readonly sites = new Map<string, SiteRecord>();
  readonly siteServers = new Map<string, SiteServerRecord>();
  readonly agents = new Map<string, AgentRecord>();
  readonly contacts = new Map<string, ContactRecord>();

  readonly #s: {
    tokens: Sublevel<TokenRecord>;
    sites: Sublevel<SiteRecord>;
    subnets: Sublevel<string>;
    siteServers: Sublevel<SiteServerRecord>;
    agents: Sublevel<AgentRecord>;
    agentMacs: Sublevel<string>;
    contacts: Sublevel<ContactRecord>;
    meta: Sublevel<unknown>;
  };

  constructor(readonly db: Database) {
    this.#s = {
      tokens: sublevel(db, 'tokens'),
      sites: sublevel(db, 'sites'),
      subnets: sublevel(db, 'subnets'),
      siteServers: sublevel(db, 'site-servers'),
      agents: sublevel(db, 'agents'),
      agentMacs: sublevel(db, 'agent-macs'),
      contacts: sublevel(db, 'contacts'),
      meta: sublevel(db, 'meta'),
    };
  }

  async load(): Promise<void> {
    for (const t of await allValues(this.#s.tokens)) this.tokens.set(t.id, t);
    for (const s of await allValues(this.#s.sites)) this.sites.set(s.name, s);
    for (const s of await allValues(this.#s.siteServers)) this.siteServers.set(s.id, s);
    for (const a of await allValues(this.#s.agents)) this.agents.set(a.id, a);
    for await (const [k, v] of this.#s.contacts.iterator()) this.contacts.set(k, v);
  }

  #tail: Promise<unknown> = Promise.resolve();

  /**
   * Writes one atomic batch. The in-memory maps are updated first, synchronously (by
   * the caller, before it awaits), so a concurrent request checks against them (two
   * sites cannot both take a subnet) and computes its index changes from the latest
   * record. Batches are applied strictly in the order they were issued (classic-level
   * runs them on the thread pool, where a later one could overtake), so the last write
   * of a record is the one on disk. On failure `revert` undoes the in-memory change.
   */
  #batch(ops: Op[], revert: () => void = () => undefined): Promise<void> {
    // Several cores: the write is checked against what this core's memory held now, when it was computed.
    const options = asOfNow(this.db);
    const written = this.#tail.then(() => this.db.batch(ops, options ?? {}));
    this.#tail = written.catch(() => undefined);
    return written.catch((err: unknown) => {
      revert();
      throw err;
    });
  }

  /** Sets `map[key] = value` now; the returned function restores what was there. */
  #set<K, V>(map: Map<K, V>, key: K, value: V | undefined): () => void {
    const had = map.has(key);
    const prev = map.get(key);
    if (value === undefined) map.delete(key);
    else map.set(key, value);
    return () => {
      if (map.get(key) !== value) return;
      if (had) map.set(key, prev as V);
      else map.delete(key);
    };
  }

  #put<V>(s: Sublevel<V>, key: string, value: V): Op {
    return { type: 'put', sublevel: s, key, value };
  }
  #del<V>(s: Sublevel<V>, key: string): Op {
    return { type: 'del', sublevel: s, key };
  }

  // --- tokens
  async putToken(t: TokenRecord): Promise<void> {
    const ops = [this.#put(this.#s.tokens, t.id, t)];
    await this.#batch(ops, this.#set(this.tokens, t.id, t));
  }
  async deleteToken(id: string): Promise<void> {
    const ops = [this.#del(this.#s.tokens, id)];
    await this.#batch(ops, this.#set(this.tokens, id, undefined));
  }

  // --- sites (record + subnet index in one batch)
  async putSite(site: SiteRecord): Promise<void> {
    const old = this.sites.get(site.name);
    const ops: Op[] = [this.#put(this.#s.sites, site.name, site)];
    for (const s of old?.subnets ?? []) if (!site.subnets.includes(s)) ops.push(this.#del(this.#s.subnets, s));
    for (const s of site.subnets) ops.push(this.#put(this.#s.subnets, s, site.name));
    await this.#batch(ops, this.#set(this.sites, site.name, site));
  }
  async deleteSite(name: string, siteServerUpdates: SiteServerRecord[]): Promise<void> {
    const old = this.sites.get(name);
    const ops: Op[] = [this.#del(this.#s.sites, name)];
    for (const s of old?.subnets ?? []) ops.push(this.#del(this.#s.subnets, s));
    for (const ss of siteServerUpdates) ops.push(this.#put(this.#s.siteServers, ss.id, ss));
    const reverts = [this.#set(this.sites, name, undefined), ...siteServerUpdates.map((ss) => this.#set(this.siteServers, ss.id, ss))];
    await this.#batch(ops, () => reverts.forEach((r) => r()));
  }

  // --- site servers
  async putSiteServer(ss: SiteServerRecord, consumedToken?: TokenRecord): Promise<void> {
    const ops: Op[] = [this.#put(this.#s.siteServers, ss.id, ss)];
    if (consumedToken) ops.push(this.#put(this.#s.tokens, consumedToken.id, consumedToken));
    await this.#batch(ops, this.#set(this.siteServers, ss.id, ss));
  }
  async deleteSiteServer(id: string, agentUpdates: AgentRecord[]): Promise<void> {
    const ops: Op[] = [this.#del(this.#s.siteServers, id), this.#del(this.#s.contacts, id)];
    for (const a of agentUpdates) ops.push(this.#put(this.#s.agents, a.id, a));
    const reverts = [this.#set(this.siteServers, id, undefined), this.#set(this.contacts, id, undefined), ...agentUpdates.map((a) => this.#set(this.agents, a.id, a))];
    await this.#batch(ops, () => reverts.forEach((r) => r()));
  }

  // --- agents (record + MAC index in one batch)
  #agentOps(a: AgentRecord): Op[] {
    const old = this.agents.get(a.id);
    const ops: Op[] = [this.#put(this.#s.agents, a.id, a)];
    for (const m of old?.macs ?? []) if (!a.macs.includes(m)) ops.push(this.#del(this.#s.agentMacs, `${m}!${a.id}`));
    for (const m of a.macs) ops.push(this.#put(this.#s.agentMacs, `${m}!${a.id}`, a.id));
    return ops;
  }
  async putAgent(a: AgentRecord, consumedToken?: TokenRecord): Promise<void> {
    const ops = this.#agentOps(a);
    if (consumedToken) ops.push(this.#put(this.#s.tokens, consumedToken.id, consumedToken));
    await this.#batch(ops, this.#set(this.agents, a.id, a));
  }
  /** Many agents at once (re-assignments), in one batch. */
  async putAgents(agents: AgentRecord[]): Promise<void> {
    if (agents.length === 0) return;
    const ops: Op[] = [];
    const reverts: (() => void)[] = [];
    for (const a of agents) {
      ops.push(...this.#agentOps(a));
      reverts.push(this.#set(this.agents, a.id, a));
    }
    await this.#batch(ops, () => reverts.forEach((r) => r()));
  }
  async deleteAgent(id: string): Promise<void> {
    const old = this.agents.get(id);
    if (!old) return;
    const ops: Op[] = [this.#del(this.#s.agents, id), this.#del(this.#s.contacts, id)];
    for (const m of old.macs) ops.push(this.#del(this.#s.agentMacs, `${m}!${id}`));
    const reverts = [this.#set(this.agents, id, undefined), this.#set(this.contacts, id, undefined)];
    await this.#batch(ops, () => reverts.forEach((r) => r()));
  }
  /** Agent ids recorded for a MAC address (lower-case, colon-separated). */
  async agentsByMac(mac: string): Promise<string[]> {
    return this.#s.agentMacs.values({ gte: `${mac}!`, lt: `${mac}!\xff` }).all();
  }

  // --- contacts: flushed in batches, only those that changed
  async flushContacts(ids: Iterable<string>): Promise<number> {
    const ops: Op[] = [];
    for (const id of ids) {
      const c = this.contacts.get(id);
      if (c && (this.agents.has(id) || this.siteServers.has(id))) ops.push(this.#put(this.#s.contacts, id, c));
    }
    if (ops.length) await this.#batch(ops);
    return ops.length;
  }
}
