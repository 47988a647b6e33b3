import { createHash, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { writeFileAtomic } from '@outpost/common/atomic-file';
import { GATEWAY_REPORT_MAX_CONNECTIONS, gatewayReportSchema, type GatewayReportBody } from '@outpost/common/gateway-report';
import type { Logger } from '@outpost/common/logger';
import { createSiteLink, type EnrollAnswer, type SiteIdentity, type SiteLink, type SiteLinkClient } from '@outpost/common/site-link';
import { createKeyAndCsr } from '@outpost/common/tls';
import type { LinkedCoreConfig, StaticCoreConfig } from './config.js';
import { callCore, expectOk } from './core-client.js';
import { CoreUrls } from './core-urls.js';
import { GatewayError, GatewayErrors } from './errors.js';
import { caFingerprint, normalizeSerial, type CoreTrust } from './trust.js';

/** A core the gateway follows over its API, as opposed to one given by files only. */
export const isLinked = (c: LinkedCoreConfig | StaticCoreConfig): c is LinkedCoreConfig => 'url' in c;

/**
 * What enrollment with a core gave the gateway (kept in `identity.json`, mode 0600, by
 * the site link): the site-server identity and the gateway's certificate, key and CA.
 */
export interface LinkIdentity extends SiteIdentity {
  coreId: string;
  caPem: string;
  certPem: string;
  keyPem: string;
  renewAfter: string;
}
const LINK_IDENTITY_FIELDS = ['coreId', 'caPem', 'certPem', 'keyPem', 'renewAfter'] as const;

/** The last good routes and revocations (kept in `state.json` for a core that is down). */
interface LinkState {
  coreId: string;
  routes: string[];
  /** `host:port` → the addresses to dial (the core's table; a name is never resolved). */
  dial?: Record<string, string[]> | undefined;
  coreTarget?: string | undefined;
  revoked: string[];
  held: string[];
  seq: number;
  etag?: string | undefined;
  fetchedAt: number;
}

interface Bundle {
  certificate: string;
  caCertificate: string;
  coreId: string;
  coreUrl: string;
  renewAfter: string;
}
export interface RoutesAnswer {
  coreId: string;
  serial: string;
  targets: Array<{ target: string; kind: string; addresses?: string[] }>;
}

/**
 * The routes of a core's table and the addresses to dial for each. A site server's
 * target by DNS name is kept only with addresses to dial (a table from a core without
 * them is not trusted with names); the core's own target is dialled as configured.
 */
export function routesOf(table: RoutesAnswer): { routes: string[]; dial: Record<string, string[]> } {
  const routes: string[] = [];
  const dial: Record<string, string[]> = {};
  for (const t of table.targets) {
    const addresses = (t.addresses ?? []).filter((a) => isIP(a) !== 0);
    const host = t.target.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    if (t.kind !== 'core' && isIP(host) === 0 && addresses.length === 0) continue;
    routes.push(t.target);
    if (addresses.length > 0) dial[t.target] = addresses;
  }
  return { routes, dial };
}
interface FeedAnswer {
  seq: number;
  items: Array<{ seq: number; serial: string; type: 'revoke' | 'hold' | 'release' }>;
  next?: number;
}

export interface LinkOptions {
  dataDir: string;
  name: string;
  publicUrl: string;
  names: string[];
  timeoutMs: number;
  staleAfterMs: number;
  log: Logger;
  /** A token when the config gives none (see GatewayDeps). */
  mintEnrollToken?: (coreUrl: string) => Promise<string | undefined>;
  /** Load figures for the heartbeat (connections, tunnels). */
  load?: () => Record<string, number>;
}

export type LinkChange = { kind: 'ca' } | { kind: 'cert' } | { kind: 'routes' } | { kind: 'revoked'; serials: string[] } | { kind: 'stale'; stale: boolean };

/** Two thirds into the certificate's lifetime. */
function renewAfterOf(pem: string): string {
  const c = new X509Certificate(pem);
  const from = Date.parse(c.validFrom);
  const to = Date.parse(c.validTo);
  return new Date(from + ((to - from) * 2) / 3).toISOString();
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * A linked core's directory `<dataDir>/cores/<hash of its URL>`: the first of the core's
 * URLs whose directory exists (so that adding a URL to a core keeps its identity; with
 * or without a trailing slash), else
 * the first URL's.
 */
function linkDir(dataDir: string, urls: readonly string[]): string {
  const dirOf = (u: string): string => join(dataDir, 'cores', createHash('sha256').update(u).digest('hex').slice(0, 12));
  // A URL configured with a trailing slash (before URLs were normalised) hashed with it.
  return urls.flatMap((u) => [dirOf(u), dirOf(`${u}/`)]).find((d) => existsSync(d)) ?? dirOf(urls[0] as string);
}

async function readJsonFile<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The gateway's link to one core: enrolls once as a site server (with a CSR: the core
 * issues the gateway's certificate), then fetches the routing table and the revocation
 * feed at an interval, renews its certificate, heartbeats and reports the connection
 * table. The last good routes and revocations are kept on disk; when the core cannot
 * be reached they stay in force and, after `staleAfter`, the link raises an alarm.
 */
export class CoreLink {
  trust: CoreTrust | undefined;
  readonly counters = { refreshes: 0, failures: 0 };
  lastError: string | undefined;
  #state: LinkState | undefined;
  readonly #dir: string;
  #extraCa: string | undefined;
  readonly #link: SiteLink<LinkIdentity>;
  readonly #core: CoreUrls;

  constructor(
    readonly config: LinkedCoreConfig,
    private readonly opts: LinkOptions,
    private readonly onChange: (change: LinkChange) => void,
  ) {
    this.#core = new CoreUrls(config.url);
    this.#dir = linkDir(opts.dataDir, this.#core.urls);
    // Calls over the gateway's own transport: https with the core's CA once it is known; several core URLs fail over.
    const core = this.#core;
    const client: SiteLinkClient = {
      bearer: '',
      get currentUrl() {
        return core.current;
      },
      get failovers() {
        return core.failovers;
      },
      call: async <T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> =>
        expectOk(await core.call(`${method} ${path}`, (url) => callCore<T>(url, method, path, { bearer: client.bearer || undefined, body, ca: this.#ca, timeoutMs: opts.timeoutMs })), `${method} ${path}`),
    };
    this.#link = createSiteLink<LinkIdentity>({
      coreUrl: this.#core.urls,
      dataDir: this.#dir,
      name: opts.name,
      log: opts.log,
      client,
      token: { enrollToken: config.enrollToken, enrollTokenFile: config.enrollTokenFile, mint: () => opts.mintEnrollToken?.(this.#core.current) ?? Promise.resolve(undefined) },
      services: () => ({ gateway: { url: opts.publicUrl } }),
      health: () => {
        const stale = this.trust?.stale ?? false;
        return { status: stale ? 'degraded' : 'ok', problems: stale ? ['routes and revocations from this core are stale'] : [], load: opts.load?.() ?? {} };
      },
      codes: { NO_ENROLL_TOKEN: GatewayErrors.CONFIG, ENROLL_REJECTED: GatewayErrors.CORE_LINK, CORE_ERROR: GatewayErrors.CORE_LINK, CORE_UNREACHABLE: GatewayErrors.CORE_LINK, IDENTITY_CORRUPT: GatewayErrors.CORE_LINK },
      identity: { extraFields: LINK_IDENTITY_FIELDS, what: 'gateway identity', enroll: () => this.#enrollment() },
    });
  }

  /** The core URL calls go to now, and how often calls moved to another (several core URLs). */
  get coreUrl(): { current: string; failovers: number } {
    return { current: this.#core.current, failovers: this.#core.failovers };
  }

  /** What enrollment with this core gave the gateway (undefined before it enrolled). */
  get identity(): LinkIdentity | undefined {
    return this.#link.identity;
  }

  /** The site link's heartbeat and enrollment counters. */
  get linkStats(): ReturnType<SiteLink['stats']> {
    return this.#link.stats();
  }

  get #ca(): string | undefined {
    return this.identity?.caPem ?? this.#extraCa;
  }

  async start(): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    if (this.config.caFile) this.#extraCa = await readFile(this.config.caFile, 'utf8');
    // Loads identity.json or enrolls (with a CSR), then heartbeats at the core's interval.
    await this.#link.start();
    this.#state = await readJsonFile<LinkState>(join(this.#dir, 'state.json'));
    this.#applyState();
    try {
      await this.refresh();
    } catch (err) {
      this.opts.log.warn({ err, core: this.config.url }, 'core unreachable at start: using the last good routes and revocations');
    }
  }

  /** Stops the heartbeat. */
  async stop(): Promise<void> {
    await this.#link.stop();
  }

  /** A new key and CSR for the enrollment; the answer's certificate, CA and core id complete the identity. */
  #enrollment(): { csr: string; complete(answer: EnrollAnswer, base: SiteIdentity): LinkIdentity } {
    const { keyPem, csrPem } = createKeyAndCsr(this.opts.name, this.opts.names);
    return {
      csr: csrPem,
      complete: (a, base) => {
        const certPem = str(a.certificate);
        const caPem = str(a.caCertificate);
        const coreId = str(a.coreId);
        if (!certPem || !caPem || !coreId) throw new GatewayError(GatewayErrors.CORE_LINK, `the core at ${this.#core.current} issued no certificate (no CA?)`);
        this.opts.log.info({ core: this.config.url, id: a.id, coreId }, 'enrolled with the core');
        return { ...base, coreId, coreUrl: str(a.coreUrl) ?? this.#core.current, caPem, certPem, keyPem, renewAfter: renewAfterOf(certPem) };
      },
    };
  }

  #applyState(): void {
    const id = this.identity!;
    const s = this.#state;
    this.trust = {
      coreId: id.coreId,
      caPem: id.caPem,
      caFingerprint: caFingerprint(id.caPem),
      routes: new Set(s?.routes ?? []),
      dial: new Map(Object.entries(s?.dial ?? {})),
      coreTarget: s?.coreTarget,
      coreUrl: id.coreUrl,
      revoked: new Set(s?.revoked ?? []),
      held: new Set(s?.held ?? []),
      fetchedAt: s?.fetchedAt,
      stale: this.trust?.stale ?? false,
    };
  }

  /** One sync: CA, routes, revocations, renewal, heartbeat. Throws when the core cannot be reached. */
  async refresh(): Promise<void> {
    const id = this.identity!;
    const common = { bearer: id.credential, ca: this.#ca, timeoutMs: this.opts.timeoutMs };
    try {
      const state: LinkState = this.#state ? { ...this.#state } : { coreId: id.coreId, routes: [], revoked: [], held: [], seq: 0, fetchedAt: 0 };
      const routes = await this.#core.call('routing table', (url) => callCore<RoutesAnswer>(url, 'GET', '/gateway/routes', { ...common, ifNoneMatch: state.etag }));
      let routesChanged = false;
      if (routes.status !== 304) {
        const table = expectOk(routes, 'routing table');
        const { routes: list, dial } = routesOf(table);
        state.routes = list;
        state.dial = dial;
        state.coreTarget = table.targets.find((t) => t.kind === 'core')?.target;
        state.etag = routes.etag;
        routesChanged = true;
      }
      const revoked = new Set(state.revoked);
      const held = new Set(state.held);
      const newlyRevoked: string[] = [];
      let seq = state.seq;
      for (let page = 0; page < 100; page++) {
        const feed = expectOk(await this.#core.call('revocation feed', (url) => callCore<FeedAnswer>(url, 'GET', `/ca/revocations?since=${seq}`, common)), 'revocation feed');
        if (feed.seq < seq) {
          // The core's feed restarted (restored db): start over.
          revoked.clear();
          held.clear();
          seq = 0;
          continue;
        }
        for (const e of feed.items) {
          const s = normalizeSerial(e.serial);
          if (e.type === 'revoke') {
            if (!revoked.has(s)) newlyRevoked.push(s);
            revoked.add(s);
            held.delete(s);
          } else if (e.type === 'hold') held.add(s);
          else held.delete(s);
          seq = Math.max(seq, e.seq);
        }
        if (feed.next === undefined) {
          seq = Math.max(seq, feed.seq);
          break;
        }
      }
      const heldChanged = held.size !== state.held.length || [...held].some((s) => !state.held.includes(s));
      state.revoked = [...revoked];
      state.held = [...held];
      state.seq = seq;
      state.fetchedAt = Date.now();
      this.#state = state;
      await writeFileAtomic(join(this.#dir, 'state.json'), JSON.stringify(state));
      await this.#renewIfDue();
      // Each good sync is also a heartbeat (as before the site link), besides the link's own at the core's interval.
      await this.#link.heartbeat();
      const wasStale = this.trust?.stale ?? false;
      this.#applyState();
      this.trust!.stale = false;
      this.counters.refreshes++;
      this.lastError = undefined;
      if (wasStale) {
        this.opts.log.info({ core: this.config.url }, 'core reachable again: routes and revocations are fresh');
        this.onChange({ kind: 'stale', stale: false });
      }
      if (routesChanged) this.onChange({ kind: 'routes' });
      if (newlyRevoked.length > 0 || heldChanged) this.onChange({ kind: 'revoked', serials: newlyRevoked });
    } catch (err) {
      this.counters.failures++;
      this.lastError = (err as Error).message;
      this.checkStale();
      throw err;
    }
  }

  /** Raises (once) the stale alarm when the last good fetch is older than `staleAfter`. */
  checkStale(now = Date.now()): void {
    if (!this.trust) return;
    const age = now - (this.trust.fetchedAt ?? 0);
    if (age > this.opts.staleAfterMs && !this.trust.stale) {
      this.trust.stale = true;
      this.opts.log.error({ core: this.config.url, lastFetch: this.trust.fetchedAt ? new Date(this.trust.fetchedAt).toISOString() : undefined, error: this.lastError }, 'ALARM: routes and revocations from this core are stale; keeping the last good copy');
      this.onChange({ kind: 'stale', stale: true });
    }
  }

  async #renewIfDue(): Promise<void> {
    const id = this.identity!;
    if (Date.now() < Date.parse(id.renewAfter)) return;
    const { keyPem, csrPem } = createKeyAndCsr(this.opts.name, this.opts.names);
    const b = expectOk(await this.#core.call('renewal', (url) => callCore<Bundle>(url, 'POST', '/ca/renew', { bearer: id.credential, ca: this.#ca, timeoutMs: this.opts.timeoutMs, body: { csr: csrPem } })), 'renewal');
    const caChanged = b.caCertificate !== id.caPem;
    await this.#link.update({ ...id, certPem: b.certificate, keyPem, caPem: b.caCertificate, renewAfter: b.renewAfter, coreUrl: b.coreUrl });
    this.opts.log.info({ core: this.config.url, renewAfter: b.renewAfter }, 'renewed the gateway certificate');
    this.onChange({ kind: 'cert' });
    if (caChanged) this.onChange({ kind: 'ca' });
  }

  /**
   * Sends the connection table to the core, in the shape and bounds the core checks
   * (`gatewayReportSchema`): past {@link GATEWAY_REPORT_MAX_CONNECTIONS} tunnels, the
   * rest are counted in `stats.connectionsOmitted` instead of listed.
   */
  async report(body: GatewayReportBody): Promise<void> {
    const id = this.identity!;
    const omitted = Math.max(0, body.connections.length - GATEWAY_REPORT_MAX_CONNECTIONS);
    const bounded = gatewayReportSchema.parse(omitted > 0 ? { ...body, stats: { ...body.stats, connectionsOmitted: omitted }, connections: body.connections.slice(0, GATEWAY_REPORT_MAX_CONNECTIONS) } : body);
    expectOk(await this.#core.call('connection report', (url) => callCore(url, 'POST', '/gateway/connections', { bearer: id.credential, ca: this.#ca, timeoutMs: this.opts.timeoutMs, body: bounded })), 'connection report');
  }
}
