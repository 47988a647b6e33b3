import { CoreEvents } from './events.js';
import { createHash } from 'node:crypto';
import { OutpostError, parseCidr, type Logger } from '@outpost/common';
import { balance } from './balance.js';
import type { CoreConfig } from './config.js';
import { agentNotFound, CoreErrors, siteNotFound, siteServerNotFound } from './errors.js';
import { canonicalAddresses, canonicalNames, claimsBeyond, migratedGrant, runsGranted, withinGrant } from './grant.js';
import type { AgentRecord, ContactRecord, ServiceGrant, ServiceName, SiteRecord, SiteServerGrant, SiteServerRecord, SiteServerServices } from './model.js';
import { parseHostAddress, selectFor, siteNets, sitesOf, type Candidate, type HostAddress, type SelectionReason, type SiteNet } from './selection.js';
import type { CoreStore } from './store.js';

export interface Clock {
  now(): number;
}

export type AgentState = 'online' | 'poll-only' | 'offline';

export interface AgentView {
  id: string;
  name: string;
  macs: string[];
  ips: string[];
  os?: string | undefined;
  sites: string[];
  taskServer?: string | undefined;
  state: AgentState;
  lastContact?: string | undefined;
  lastContactVia?: 'udp' | 'http' | undefined;
  configSerial: string;
  reportedConfigSerial?: string | undefined;
  createdAt: string;
}

/** An administrator's change to a site server's grant (each field replaces the old value). */
export interface GrantPatch {
  services?: ServiceGrant | undefined;
  sites?: string[] | undefined;
  addresses?: string[] | undefined;
  names?: string[] | undefined;
}

/** A heartbeat's statement: service URLs and tickle address to restate, and nothing else. */
export interface SiteServerClaim {
  services?: SiteServerServices | undefined;
  tickleAddress?: string | undefined;
  address?: string | undefined;
  /** Health and load: reported, shown, never a claim. */
  health?: SiteServerHealth | undefined;
}

/** What a site server's last heartbeat said about its health and load. */
export interface SiteServerHealth {
  status: 'ok' | 'degraded';
  problems?: string[] | undefined;
  load?: Record<string, number> | undefined;
}

export interface SiteServerView {
  id: string;
  name: string;
  /** The address it stated at enrollment: shown, never used. */
  reportedAddress?: string | undefined;
  tickleAddress?: string | undefined;
  services: SiteServerRecord['services'];
  grant: SiteServerGrant & { sites: string[] };
  sites: string[];
  effectiveSites: string[];
  state: 'online' | 'offline';
  lastContact?: string | undefined;
  configSerial: string;
  load: { agents: number };
  /** Its last heartbeat's health and load (absent until one reported it since the core started). */
  health?: (SiteServerHealth & { at: string }) | undefined;
  createdAt: string;
}

const healthView = (h: (SiteServerHealth & { at: number }) | undefined): (SiteServerHealth & { at: string }) | undefined => (h ? { ...h, at: new Date(h.at).toISOString() } : undefined);
const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());
const serialOf = (doc: unknown): string => createHash('sha256').update(JSON.stringify(doc)).digest('hex').slice(0, 16);

/** Index of the first element of sorted `ids` greater than `after` (binary search). */
function firstAfter(ids: readonly string[], after: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Sites, site servers and agents: the in-memory view over {@link CoreStore} with the
 * derived caches (parsed subnets, each agent's sites, config serials, task-server load)
 * and the rules that tie them together (selection, assignment, reachability states).
 */
export class Registry {
  #nets: SiteNet[] = [];
  readonly #agentAddrs = new Map<string, HostAddress[]>();
  readonly #agentSites = new Map<string, string[]>();
  /** Agents per site name (kept with #agentSites, so a site view does not scan every agent). */
  readonly #siteAgents = new Map<string, number>();
  /** Agent ids in order, for paging; rebuilt on the first listing after an agent comes or goes. */
  #sortedAgentIds: string[] | undefined;
  readonly #ssAddrs = new Map<string, HostAddress[]>();
  readonly #ssSites = new Map<string, string[]>();
  readonly #ssOnline = new Map<string, boolean>();
  readonly #keys = new Map<string, Buffer>();
  readonly #agentSerial = new Map<string, string>();
  readonly #load = new Map<string, number>();
  /** Each site server's last reported health (memory only: the next heartbeat restates it). */
  readonly #health = new Map<string, SiteServerHealth & { at: number }>();
  readonly #dirtyContacts = new Set<string>();
  #rebalanceTimer: NodeJS.Timeout | undefined;
  #rebalancing: Promise<void> = Promise.resolve();
  #stopped = false;
  /** UDP port agents send heartbeats to; set by the core once bound. */
  datagramPort = 0;
  /** Whether this core re-balances (holds the `registry.rebalance` lease); another core does otherwise. */
  mayRebalance: () => boolean = () => true;
  readonly #ssSerial = new Map<string, string>();
  /** Heartbeat claims beyond a grant, refused (`outpost_core_claims_refused_total`). */
  claimsRefused = 0;

  constructor(
    readonly store: CoreStore,
    private readonly config: CoreConfig,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** Where the registry says what changed: `agents.changed`, `agent.enrolled`, `site-servers.changed`. */
    readonly events: CoreEvents = new CoreEvents(log),
  ) {}

  /** Builds every cache from the loaded store. */
  init(): void {
    for (const ss of this.store.siteServers.values()) {
      if (ss.grant) continue;
      // Written before grants: keep what it ran (see migratedGrant); the admin narrows it.
      const { address, ...rest } = ss;
      const migrated: SiteServerRecord = { ...rest, ...(address ? { reportedAddress: address } : {}), grant: migratedGrant(ss) };
      this.store.siteServers.set(ss.id, migrated);
      this.log.warn({ siteServer: ss.id, grant: migrated.grant }, 'site server enrolled before grants: granted what it ran; review it (PATCH /site-servers/:id grant)');
    }
    this.#nets = siteNets(this.store.sites.values());
    for (const ss of this.store.siteServers.values()) this.#indexSiteServer(ss);
    for (const a of this.store.agents.values()) {
      this.#indexAgent(a);
      if (a.taskServer) this.#load.set(a.taskServer, (this.#load.get(a.taskServer) ?? 0) + 1);
    }
    for (const ss of this.store.siteServers.values()) this.#ssOnline.set(ss.id, this.siteServerOnline(ss.id));
    for (const a of this.store.agents.values()) this.#agentSerial.set(a.id, serialOf(this.#agentConfigDoc(a)));
    for (const ss of this.store.siteServers.values()) this.#ssSerial.set(ss.id, this.siteServerConfig(ss).serial as string);
    this.scheduleRebalance();
  }

  /** Recomputes site-server config serials and reports the ones that changed. */
  #refreshSiteServerSerials(): void {
    const changed: string[] = [];
    for (const ss of this.store.siteServers.values()) {
      const serial = this.siteServerConfig(ss).serial as string;
      if (this.#ssSerial.get(ss.id) !== serial) {
        if (this.#ssSerial.has(ss.id)) changed.push(ss.id);
        this.#ssSerial.set(ss.id, serial);
      }
    }
    if (changed.length) this.events.emit('site-servers.changed', { ids: changed });
  }

  /** Cancels a pending re-balance and refuses new ones (the core is stopping). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#rebalanceTimer);
    this.#rebalanceTimer = undefined;
  }

  /** The datagram HMAC key of an agent or site server. */
  keyFor(id: string): Buffer | undefined {
    return this.#keys.get(id);
  }

  #indexAgent(a: AgentRecord): void {
    const addrs = a.ips.map(parseHostAddress).filter((x): x is HostAddress => x !== undefined);
    this.#agentAddrs.set(a.id, addrs);
    if (!this.#agentSites.has(a.id)) this.#sortedAgentIds = undefined;
    this.#setAgentSites(a.id, sitesOf(addrs, this.#nets));
    this.#keys.set(a.id, Buffer.from(a.udpKey, 'hex'));
  }

  /** Sets an agent's sites (undefined: it is gone), keeping the per-site counts in step. */
  #setAgentSites(id: string, sites: string[] | undefined): void {
    for (const s of this.#agentSites.get(id) ?? []) {
      const n = (this.#siteAgents.get(s) ?? 1) - 1;
      if (n > 0) this.#siteAgents.set(s, n);
      else this.#siteAgents.delete(s);
    }
    if (sites === undefined) {
      this.#agentSites.delete(id);
      return;
    }
    this.#agentSites.set(id, sites);
    for (const s of sites) this.#siteAgents.set(s, (this.#siteAgents.get(s) ?? 0) + 1);
  }

  #indexSiteServer(ss: SiteServerRecord): void {
    // Subnet-based membership uses the approved addresses, never the stated one.
    const addrs = ss.grant.addresses.map(parseHostAddress).filter((a): a is HostAddress => a !== undefined);
    this.#ssAddrs.set(ss.id, addrs);
    const eff = new Set(ss.sites.filter((s) => this.store.sites.has(s)));
    for (const s of sitesOf(addrs, this.#nets)) eff.add(s);
    this.#ssSites.set(ss.id, [...eff].sort());
    this.#keys.set(ss.id, Buffer.from(ss.udpKey, 'hex'));
  }

  #reindexAll(): void {
    this.#nets = siteNets(this.store.sites.values());
    for (const ss of this.store.siteServers.values()) this.#indexSiteServer(ss);
    for (const a of this.store.agents.values()) this.#setAgentSites(a.id, sitesOf(this.#agentAddrs.get(a.id) ?? [], this.#nets));
  }

  // ---------------------------------------------------------------- other cores' changes

  /**
   * Another core changed a site (its record is in `value`, undefined when deleted): the
   * store's map takes it and everything derived from sites is rebuilt. Callbacks that the
   * changing core already made (tickles, rebalancing) are not made again here.
   */
  remoteSite(name: string, value: SiteRecord | undefined): void {
    if (value) this.store.sites.set(name, value);
    else this.store.sites.delete(name);
    this.#reindexAll();
    for (const ss of this.store.siteServers.values()) this.#ssSerial.set(ss.id, this.siteServerConfig(ss).serial as string);
    // The core holding the re-balancing lease re-balances (whichever core made the change).
    this.scheduleRebalance();
  }

  remoteSiteServer(id: string, value: SiteServerRecord | undefined): void {
    if (!value) {
      this.store.siteServers.delete(id);
      for (const m of [this.#ssAddrs, this.#ssSites, this.#ssOnline, this.#keys, this.#load, this.#ssSerial, this.#health]) m.delete(id);
      this.scheduleRebalance();
      return;
    }
    this.store.siteServers.set(id, value);
    this.scheduleRebalance();
    this.#indexSiteServer(value);
    if (!this.#ssOnline.has(id)) this.#ssOnline.set(id, this.siteServerOnline(id));
    this.#ssSerial.set(id, this.siteServerConfig(value).serial as string);
    for (const a of this.store.agents.values()) if (a.taskServer === id) this.#agentSerial.set(a.id, serialOf(this.#agentConfigDoc(a)));
  }

  remoteAgent(id: string, value: AgentRecord | undefined): void {
    const old = this.store.agents.get(id);
    if (old?.taskServer) this.#load.set(old.taskServer, Math.max(0, (this.#load.get(old.taskServer) ?? 1) - 1));
    if (!value) {
      this.store.agents.delete(id);
      this.store.contacts.delete(id);
      this.#setAgentSites(id, undefined);
      this.#sortedAgentIds = undefined;
      for (const m of [this.#agentAddrs, this.#keys, this.#agentSerial]) m.delete(id);
      this.#dirtyContacts.delete(id);
      return;
    }
    this.store.agents.set(id, value);
    if (value.taskServer) this.#load.set(value.taskServer, (this.#load.get(value.taskServer) ?? 0) + 1);
    this.#indexAgent(value);
    if (!old || old.ips.join() !== value.ips.join()) this.scheduleRebalance();
    this.#agentSerial.set(id, serialOf(this.#agentConfigDoc(value)));
  }

  /** Another core recorded a contact: the later one counts (each core flushes what it heard). */
  remoteContact(id: string, value: ContactRecord | undefined): void {
    if (!value) return;
    const mine = this.store.contacts.get(id);
    const latest = !mine || value.last >= mine.last ? { ...value } : mine;
    const udp = Math.max(mine?.udp ?? 0, value.udp ?? 0);
    if (udp > 0) latest.udp = udp;
    this.store.contacts.set(id, latest);
  }

  // ---------------------------------------------------------------- contacts & states

  /**
   * Records a contact. A heartbeat says how it came (`udp` or `http`: that is the
   * agent's `lastContactVia`); any other authenticated call (`call`) counts as contact
   * without changing how the agent heartbeats.
   */
  touch(id: string, via: 'udp' | 'http' | 'call', reportedSerial?: string): void {
    const now = this.clock.now();
    const c: ContactRecord = this.store.contacts.get(id) ?? { last: now, via: via === 'udp' ? 'udp' : 'http' };
    c.last = now;
    if (via !== 'call') c.via = via;
    if (via === 'udp') c.udp = now;
    if (reportedSerial !== undefined) c.serial = reportedSerial;
    this.store.contacts.set(id, c);
    this.#dirtyContacts.add(id);
    if (this.store.siteServers.has(id) && this.#ssOnline.get(id) === false) {
      this.#ssOnline.set(id, true);
      this.scheduleRebalance();
    }
  }

  async flushContacts(): Promise<void> {
    if (this.#dirtyContacts.size === 0) return;
    const ids = [...this.#dirtyContacts];
    this.#dirtyContacts.clear();
    try {
      await this.store.flushContacts(ids);
    } catch (err) {
      for (const id of ids) this.#dirtyContacts.add(id);
      throw err;
    }
  }

  agentState(id: string): AgentState {
    const c = this.store.contacts.get(id);
    if (!c) return 'offline';
    const window = this.config.agents.heartbeatInterval * this.config.agents.offlineAfterMissed;
    const now = this.clock.now();
    if (c.udp !== undefined && now - c.udp <= window) return 'online';
    return now - c.last <= window ? 'poll-only' : 'offline';
  }

  siteServerOnline(id: string): boolean {
    const c = this.store.contacts.get(id);
    const window = this.config.siteServers.heartbeatInterval * this.config.siteServers.offlineAfterMissed;
    return c !== undefined && this.clock.now() - c.last <= window;
  }

  /** Periodic: notices site servers going offline and re-balances their agents. */
  checkSiteServerStates(): void {
    let changed = false;
    for (const id of this.store.siteServers.keys()) {
      const online = this.siteServerOnline(id);
      if (this.#ssOnline.get(id) !== online) {
        this.#ssOnline.set(id, online);
        changed = true;
        this.log.info({ siteServer: id, online }, 'site server state changed');
      }
    }
    if (changed) this.scheduleRebalance();
  }

  // ---------------------------------------------------------------- sites

  siteView(s: SiteRecord): Record<string, unknown> {
    const agents = this.#siteAgents.get(s.name) ?? 0;
    const siteServers = [...this.#ssSites].filter(([, sites]) => sites.includes(s.name)).map(([id]) => id);
    return { name: s.name, subnets: s.subnets, description: s.description, createdAt: iso(s.createdAt), siteServers, agents };
  }

  getSite(name: string): SiteRecord {
    const s = this.store.sites.get(name);
    if (!s) throw siteNotFound(name);
    return s;
  }

  #checkSubnets(name: string, subnets: string[]): string[] {
    const canonical = subnets.map((s) => parseCidr(s).text);
    const dup = canonical.find((s, i) => canonical.indexOf(s) !== i);
    if (dup) throw new OutpostError(CoreErrors.SUBNET_TAKEN, `subnet ${dup} is listed twice`, { status: 409 });
    for (const other of this.store.sites.values()) {
      if (other.name === name) continue;
      const clash = canonical.find((s) => other.subnets.includes(s));
      if (clash) {
        throw new OutpostError(CoreErrors.SUBNET_TAKEN, `subnet ${clash} already belongs to site '${other.name}'`, {
          status: 409,
          details: { subnet: clash, site: other.name },
        });
      }
    }
    return canonical;
  }

  async addSite(input: { name: string; subnets: string[]; description?: string | undefined }): Promise<SiteRecord> {
    if (this.store.sites.has(input.name)) {
      throw new OutpostError(CoreErrors.SITE_EXISTS, `a site named '${input.name}' exists already`, { status: 409 });
    }
    const site: SiteRecord = {
      name: input.name,
      subnets: this.#checkSubnets(input.name, input.subnets),
      description: input.description,
      createdAt: this.clock.now(),
    };
    await this.store.putSite(site);
    this.#sitesChanged();
    return site;
  }

  async updateSite(name: string, patch: { subnets?: string[] | undefined; description?: string | undefined }): Promise<SiteRecord> {
    const old = this.getSite(name);
    const site: SiteRecord = {
      ...old,
      subnets: patch.subnets ? this.#checkSubnets(name, patch.subnets) : old.subnets,
      description: patch.description ?? old.description,
    };
    await this.store.putSite(site);
    this.#sitesChanged();
    return site;
  }

  async deleteSite(name: string): Promise<void> {
    this.getSite(name);
    const updates = [...this.store.siteServers.values()]
      .filter((ss) => ss.sites.includes(name))
      .map((ss) => ({ ...ss, sites: ss.sites.filter((s) => s !== name) }));
    await this.store.deleteSite(name, updates);
    this.#sitesChanged();
  }

  #sitesChanged(): void {
    this.#reindexAll();
    this.#refreshSiteServerSerials();
    this.scheduleRebalance();
  }

  // ---------------------------------------------------------------- site servers

  #candidates(): Candidate[] {
    return [...this.store.siteServers.values()].map((record) => ({
      record,
      addresses: this.#ssAddrs.get(record.id) ?? [],
      sites: this.#ssSites.get(record.id) ?? [],
      online: this.#ssOnline.get(record.id) ?? false,
      load: this.#load.get(record.id) ?? 0,
    }));
  }

  getSiteServer(id: string): SiteServerRecord {
    const ss = this.store.siteServers.get(id);
    if (!ss) throw siteServerNotFound(id);
    return ss;
  }

  siteServerConfig(ss: SiteServerRecord): Record<string, unknown> {
    const doc = {
      id: ss.id,
      name: ss.name,
      sites: this.#ssSites.get(ss.id) ?? [],
      services: ss.services,
      heartbeatIntervalMs: this.config.siteServers.heartbeatInterval,
    };
    return { serial: serialOf(doc), ...doc };
  }

  siteServerView(ss: SiteServerRecord): SiteServerView {
    const c = this.store.contacts.get(ss.id);
    return {
      id: ss.id,
      name: ss.name,
      reportedAddress: ss.reportedAddress,
      tickleAddress: ss.tickleAddress,
      services: ss.services,
      grant: { ...ss.grant, sites: ss.sites },
      sites: ss.sites,
      effectiveSites: this.#ssSites.get(ss.id) ?? [],
      state: this.siteServerOnline(ss.id) ? 'online' : 'offline',
      lastContact: iso(c?.last),
      configSerial: this.siteServerConfig(ss).serial as string,
      load: { agents: this.#load.get(ss.id) ?? 0 },
      health: healthView(this.#health.get(ss.id)),
      createdAt: iso(ss.createdAt)!,
    };
  }

  async addSiteServer(ss: SiteServerRecord, consumed: Parameters<CoreStore['putSiteServer']>[1]): Promise<void> {
    this.#validateSites(ss.sites);
    await this.store.putSiteServer(ss, consumed);
    this.#indexSiteServer(ss);
    this.#ssSerial.set(ss.id, this.siteServerConfig(ss).serial as string);
    this.touch(ss.id, 'http');
    this.#ssOnline.set(ss.id, true);
    this.scheduleRebalance();
  }

  #validateSites(sites: string[]): void {
    const unknown = sites.find((s) => !this.store.sites.has(s));
    if (unknown) throw siteNotFound(unknown);
  }

  /** Throws 404 `CORE_SITE_NOT_FOUND` for a site that does not exist. */
  checkSites(sites: string[]): void {
    this.#validateSites(sites);
  }

  /** Whether a site server is granted `service` and runs it. */
  runsGranted(id: string, service: ServiceName): boolean {
    const ss = this.store.siteServers.get(id);
    return ss !== undefined && runsGranted(ss, service);
  }

  /** Whether a site server is granted `service` (whether or not it states it yet). */
  granted(id: string, service: ServiceName): boolean {
    return this.store.siteServers.get(id)?.grant.services[service] !== undefined;
  }

  /**
   * A site server's heartbeat: it may restate the URLs of granted services (on approved
   * hosts) and its tickle address (approved host). Anything beyond its grant (a service
   * not granted, an unapproved host, another `constrained`, a changed `address`) refuses
   * the whole heartbeat: 403 `CORE_CLAIM_REFUSED`, counted, logged; nothing changes. The
   * address it enrolled with, restated unchanged (as site servers before grants did),
   * claims nothing.
   */
  async heartbeatClaim(id: string, claim: SiteServerClaim): Promise<SiteServerRecord> {
    const old = this.getSiteServer(id);
    const beyond = claimsBeyond(old.grant, claim.services, claim.tickleAddress);
    if (claim.address !== undefined && claim.address !== old.reportedAddress) beyond.push('a site server does not change its address in a heartbeat (the admin approves addresses)');
    if (beyond.length > 0) {
      this.claimsRefused++;
      this.log.warn({ principal: id, refused: beyond }, 'heartbeat claim beyond the grant refused');
      throw new OutpostError(CoreErrors.CLAIM_REFUSED, `the heartbeat claims more than this site server is granted: ${beyond.join('; ')}`, { status: 403, details: { refused: beyond } });
    }
    if (claim.health) this.#health.set(id, { ...claim.health, at: this.clock.now() });
    return this.#putSiteServer(old, {
      ...old,
      ...(claim.services ? { services: { ...old.services, ...claim.services } } : {}),
      ...(claim.tickleAddress !== undefined ? { tickleAddress: claim.tickleAddress } : {}),
    });
  }

  /**
   * An administrator's change: name, sites, the services it runs (within its grant) and
   * its grant. Narrowing the grant drops what falls outside it from the record (selection,
   * routing and task assignment follow).
   */
  async updateSiteServer(id: string, patch: { name?: string | undefined; sites?: string[] | undefined; services?: SiteServerServices | undefined; grant?: GrantPatch | undefined }): Promise<SiteServerRecord> {
    const old = this.getSiteServer(id);
    const sites = patch.grant?.sites ?? patch.sites;
    if (sites) this.#validateSites(sites);
    const g = patch.grant;
    const grant: SiteServerGrant = g
      ? {
          services: g.services ?? old.grant.services,
          addresses: g.addresses ? canonicalAddresses(g.addresses) : old.grant.addresses,
          names: g.names ? canonicalNames(g.names) : old.grant.names,
          approvedBy: g.addresses ? 'admin' : old.grant.approvedBy,
        }
      : old.grant;
    if (patch.services) {
      const beyond = claimsBeyond(grant, patch.services, undefined);
      if (beyond.length > 0) throw new OutpostError(CoreErrors.GRANT_EXCEEDED, `the services are beyond the grant: ${beyond.join('; ')}`, { status: 403, details: { refused: beyond } });
    }
    const tickleOk = old.tickleAddress === undefined || claimsBeyond(grant, undefined, old.tickleAddress).length === 0;
    const next: SiteServerRecord = {
      ...old,
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(sites ? { sites } : {}),
      grant,
      services: withinGrant(grant, patch.services ?? old.services),
      tickleAddress: tickleOk ? old.tickleAddress : undefined,
    };
    return this.#putSiteServer(old, next);
  }

  async #putSiteServer(old: SiteServerRecord, ss: SiteServerRecord): Promise<SiteServerRecord> {
    if (JSON.stringify(ss) === JSON.stringify(old)) return old;
    await this.store.putSiteServer(ss);
    this.#indexSiteServer(ss);
    this.#refreshSiteServerSerials();
    this.scheduleRebalance();
    // Agents assigned to it carry its URL in their config.
    this.#refreshSerials([...this.store.agents.values()].filter((a) => a.taskServer === ss.id).map((a) => a.id));
    return ss;
  }

  async deleteSiteServer(id: string): Promise<void> {
    this.getSiteServer(id);
    const orphans = [...this.store.agents.values()].filter((a) => a.taskServer === id).map((a) => ({ ...a, taskServer: undefined }));
    await this.store.deleteSiteServer(id, orphans);
    for (const m of [this.#ssAddrs, this.#ssSites, this.#ssOnline, this.#keys, this.#load, this.#ssSerial, this.#health]) m.delete(id);
    this.#refreshSerials(orphans.map((a) => a.id));
    this.scheduleRebalance();
  }

  // ---------------------------------------------------------------- agents

  getAgent(id: string): AgentRecord {
    const a = this.store.agents.get(id);
    if (!a) throw agentNotFound(id);
    return a;
  }

  agentSites(id: string): string[] {
    return this.#agentSites.get(id) ?? [];
  }

  agentSerial(id: string): string | undefined {
    return this.#agentSerial.get(id);
  }

  #agentConfigDoc(a: AgentRecord): Record<string, unknown> {
    const ts = a.taskServer ? this.store.siteServers.get(a.taskServer) : undefined;
    return {
      id: a.id,
      name: a.name,
      heartbeatIntervalMs: this.config.agents.heartbeatInterval,
      configPollIntervalMs: this.config.agents.configPollInterval,
      datagramPort: this.datagramPort,
      ...(ts?.services.task && runsGranted(ts, 'task') ? { taskServer: { id: ts.id, url: ts.services.task.url } } : {}),
    };
  }

  agentConfig(id: string): Record<string, unknown> {
    const doc = this.#agentConfigDoc(this.getAgent(id));
    return { serial: serialOf(doc), ...doc };
  }

  #refreshSerials(ids: string[]): void {
    const changed: string[] = [];
    for (const id of ids) {
      const a = this.store.agents.get(id);
      if (!a) continue;
      const s = serialOf(this.#agentConfigDoc(a));
      if (this.#agentSerial.get(id) !== s) {
        this.#agentSerial.set(id, s);
        changed.push(id);
      }
    }
    if (changed.length) this.events.emit('agents.changed', { ids: changed });
  }

  agentView(a: AgentRecord): AgentView {
    const c = this.store.contacts.get(a.id);
    return {
      id: a.id,
      name: a.name,
      macs: a.macs,
      ips: a.ips,
      os: a.os,
      sites: this.#agentSites.get(a.id) ?? [],
      taskServer: a.taskServer,
      state: this.agentState(a.id),
      lastContact: iso(c?.last),
      lastContactVia: c?.via,
      configSerial: this.#agentSerial.get(a.id) ?? '',
      reportedConfigSerial: c?.serial,
      createdAt: iso(a.createdAt)!,
    };
  }

  /** `scope`: only agents in at least one of these sites (a scoped administrator's view). */
  listAgents(filter: { state?: AgentState | undefined; site?: string | undefined; q?: string | undefined; after?: string | undefined; limit: number; scope?: readonly string[] | undefined }): {
    items: AgentView[];
    next?: string;
  } {
    const q = filter.q?.toLowerCase();
    const ids = (this.#sortedAgentIds ??= [...this.store.agents.keys()].sort());
    const items: AgentView[] = [];
    let i = filter.after ? firstAfter(ids, filter.after) : 0;
    for (; i < ids.length && items.length < filter.limit; i++) {
      const a = this.store.agents.get(ids[i]!)!;
      if (filter.site && !(this.#agentSites.get(a.id) ?? []).includes(filter.site)) continue;
      if (filter.scope && !(this.#agentSites.get(a.id) ?? []).some((s) => filter.scope!.includes(s))) continue;
      if (filter.state && this.agentState(a.id) !== filter.state) continue;
      if (q && !a.name.toLowerCase().includes(q) && !a.id.toLowerCase().includes(q) && !a.macs.some((m) => m.includes(q)) && !a.ips.some((x) => x.includes(q))) continue;
      items.push(this.agentView(a));
    }
    return i < ids.length && items.length === filter.limit ? { items, next: items[items.length - 1]!.id } : { items };
  }

  async addAgent(a: AgentRecord, consumed: Parameters<CoreStore['putAgent']>[1]): Promise<void> {
    this.#indexAgent(a);
    const ts = this.#pickTaskServer(a.id, undefined);
    const record = ts ? { ...a, taskServer: ts } : a;
    // Counted before the write, so agents enrolling concurrently see each other's load.
    if (ts) this.#load.set(ts, (this.#load.get(ts) ?? 0) + 1);
    try {
      await this.store.putAgent(record, consumed);
    } catch (err) {
      if (ts) this.#load.set(ts, Math.max(0, (this.#load.get(ts) ?? 1) - 1));
      throw err;
    }
    this.#agentSerial.set(a.id, serialOf(this.#agentConfigDoc(record)));
    this.touch(a.id, 'http');
    this.events.emit('agent.enrolled', { agent: record });
  }

  async updateAgent(id: string, patch: Partial<Pick<AgentRecord, 'name' | 'macs' | 'ips' | 'os'>>): Promise<AgentRecord> {
    const old = this.getAgent(id);
    const a: AgentRecord = { ...old };
    for (const [k, v] of Object.entries(patch)) if (v !== undefined) (a as unknown as Record<string, unknown>)[k] = v;
    if (JSON.stringify(a) === JSON.stringify(old)) return old;
    await this.store.putAgent(a);
    this.#indexAgent(a);
    this.#refreshSerials([id]);
    if (patch.ips) this.scheduleRebalance();
    return a;
  }

  async deleteAgent(id: string): Promise<void> {
    const a = this.getAgent(id);
    await this.store.deleteAgent(id);
    if (a.taskServer) this.#load.set(a.taskServer, Math.max(0, (this.#load.get(a.taskServer) ?? 1) - 1));
    this.#setAgentSites(id, undefined);
    this.#sortedAgentIds = undefined;
    for (const m of [this.#agentAddrs, this.#keys, this.#agentSerial]) m.delete(id);
    this.#dirtyContacts.delete(id);
    // Its task server re-reads its agents (CONFIG tickle) and forgets this one's key.
    if (a.taskServer) this.events.emit('site-servers.changed', { ids: [a.taskServer] });
  }

  /**
   * An agent was blocked or unblocked: its task server re-reads its agents at once (CONFIG
   * tickle), dropping (or taking back) its key and closing its WebSocket.
   */
  agentAccessChanged(id: string): void {
    const ts = this.store.agents.get(id)?.taskServer;
    if (ts) this.events.emit('site-servers.changed', { ids: [ts] });
  }

  /** Ordered site servers running `service` for an agent. */
  selection(id: string, service: ServiceName): { reason: SelectionReason; servers: Candidate[] } {
    this.getAgent(id);
    return selectFor(this.#agentSites.get(id) ?? [], this.#agentAddrs.get(id) ?? [], this.#candidates(), service);
  }

  #eligibleTaskServers(agentId: string, candidates: Candidate[]): string[] {
    const { servers } = selectFor(this.#agentSites.get(agentId) ?? [], this.#agentAddrs.get(agentId) ?? [], candidates, 'task');
    const online = servers.filter((c) => c.online);
    return (online.length ? online : servers).map((c) => c.record.id);
  }

  #pickTaskServer(agentId: string, current: string | undefined): string | undefined {
    const eligible = this.#eligibleTaskServers(agentId, this.#candidates());
    if (current && eligible.includes(current)) return current;
    let best: string | undefined;
    for (const s of eligible) if (best === undefined || (this.#load.get(s) ?? 0) < (this.#load.get(best) ?? 0)) best = s;
    return best;
  }

  // ---------------------------------------------------------------- re-balancing

  /** Coalesces triggers: one re-balance runs shortly after a burst of changes. */
  scheduleRebalance(delayMs = 50): void {
    if (this.#rebalanceTimer || this.#stopped) return;
    this.#rebalanceTimer = setTimeout(() => {
      this.#rebalanceTimer = undefined;
      if (!this.mayRebalance()) return;
      this.#rebalancing = this.#rebalancing
        .then(async () => {
          await this.rebalance();
        })
        .catch((err: unknown) => this.log.error({ err }, 'task server re-balancing failed'));
    }, delayMs);
    this.#rebalanceTimer.unref();
  }

  /** Waits for any scheduled re-balance (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.#rebalanceTimer) await new Promise((r) => setTimeout(r, 10));
    await this.#rebalancing;
  }

  async rebalance(): Promise<number> {
    const candidates = this.#candidates();
    const taskServers = candidates.filter((c) => runsGranted(c.record, 'task')).map((c) => c.record.id);
    const inputs = [...this.store.agents.values()].map((a) => ({
      agentId: a.id,
      current: a.taskServer,
      eligible: this.#eligibleTaskServers(a.id, candidates),
    }));
    const result = balance(inputs, taskServers);
    const changed: AgentRecord[] = [];
    for (const [agentId, ts] of result) {
      const a = this.store.agents.get(agentId);
      if (a && a.taskServer !== ts) changed.push({ ...a, taskServer: ts });
    }
    for (let i = 0; i < changed.length; i += 2000) await this.store.putAgents(changed.slice(i, i + 2000));
    this.#load.clear();
    for (const a of this.store.agents.values()) if (a.taskServer) this.#load.set(a.taskServer, (this.#load.get(a.taskServer) ?? 0) + 1);
    if (changed.length) {
      this.log.info({ moved: changed.length, taskServers: taskServers.length }, 'agents re-assigned to task servers');
      this.#refreshSerials(changed.map((a) => a.id));
    }
    return changed.length;
  }
}
