import { datagramKey, hashSecret, hexEqual, newId, newSecret, OutpostError, parseCredential } from '@outpost/common';
import type { CoreConfig } from './config.js';
import { CoreErrors } from './errors.js';
import { canonicalAddresses, canonicalNames, claimsBeyond } from './grant.js';
import type { AgentRecord, EnrollKind, SiteServerGrant, SiteServerRecord, SiteServerServices, TokenGrant, TokenRecord } from './model.js';
import type { Clock, Registry } from './registry.js';

export interface TokenView {
  id: string;
  for: EnrollKind;
  uses: number;
  usesLeft: number;
  expiresAt: string;
  createdAt: string;
  note?: string | undefined;
  grant?: TokenGrant | undefined;
  site?: string | undefined;
}

export type EnrollRequest = (
  | { kind: 'agent'; token: string; name: string; macs: string[]; ips: string[]; os?: string | undefined }
  | {
      kind: 'site-server';
      token: string;
      name: string;
      address?: string | undefined;
      tickleAddress?: string | undefined;
      services: SiteServerServices;
      /** The request's source address (trusted on first use when the grant names no address). */
      sourceIp?: string | undefined;
    }
) & { /** A PEM PKCS#10 request: the result then carries a certificate from the core's CA. */ csr?: string | undefined };

/** What enrollment adds to its result when the request carried a CSR (see `ca/`). */
export interface EnrollCertificate {
  certificate: string;
  caCertificate: string;
  coreId: string;
  coreUrl: string;
}

/**
 * Issues certificates at enrollment: `prepare` checks the CSR (and, for a site server,
 * that it names only `approved` addresses and names), its result issues once the
 * principal exists.
 */
export interface EnrollmentCertifier {
  prepare(csr: string, kind: EnrollKind): Promise<{ names: string[]; approve(approved: Pick<SiteServerGrant, 'addresses' | 'names'>): void; issue(principalId: string): Promise<EnrollCertificate> }>;
}

const certifiers = new WeakMap<Registry, EnrollmentCertifier>();

const workKeys = new WeakMap<Registry, string>();

/** Installs the work-signing public key agents pin at enrollment (the tasks module does, at start). */
export function setEnrollmentWorkKey(registry: Registry, workKey: string): void {
  workKeys.set(registry, workKey);
}

/** Installs the certifier of the core that owns `registry` (the CA module does, at start). */
export function setEnrollmentCertifier(registry: Registry, certifier: EnrollmentCertifier): void {
  certifiers.set(registry, certifier);
}

export interface EnrollResult {
  id: string;
  kind: EnrollKind;
  credential: string;
  datagramPort: number;
  heartbeatIntervalMs: number;
  configPollIntervalMs?: number;
  certificate?: string;
  caCertificate?: string;
  coreId?: string;
  coreUrl?: string;
  /** Agents: the core's work-signing public key (SPKI DER, base64), pinned to verify runs. */
  workKey?: string;
}

/**
 * The record of `token` when it enrolls a `kind` now: the right secret, not expired, a use
 * left; else the error that says which. Spends nothing (enrollment takes the use; the
 * install link only asks).
 */
export function checkEnrollToken(tokens: ReadonlyMap<string, TokenRecord>, token: string, kind: EnrollKind, now: number): TokenRecord {
  const cred = parseCredential(token);
  const record = cred ? tokens.get(cred.id) : undefined;
  if (!cred || !record || !hexEqual(record.hash, hashSecret(cred.secret))) {
    throw new OutpostError(CoreErrors.ENROLL_TOKEN_INVALID, 'the enrollment token is not valid', { status: 401 });
  }
  if (record.expiresAt <= now) {
    throw new OutpostError(CoreErrors.ENROLL_TOKEN_EXPIRED, `the enrollment token expired at ${new Date(record.expiresAt).toISOString()}`, { status: 401 });
  }
  if (record.usesLeft <= 0) {
    throw new OutpostError(CoreErrors.ENROLL_TOKEN_USED_UP, 'the enrollment token has no uses left', { status: 401 });
  }
  if (record.for !== kind) {
    throw new OutpostError(CoreErrors.ENROLL_KIND_MISMATCH, `this token enrolls a ${record.for}, but the request describes a ${kind}`, { status: 400 });
  }
  return record;
}

const tokenView = (t: TokenRecord): TokenView => ({
  id: t.id,
  for: t.for,
  uses: t.uses,
  usesLeft: t.usesLeft,
  expiresAt: new Date(t.expiresAt).toISOString(),
  createdAt: new Date(t.createdAt).toISOString(),
  note: t.note,
  ...(t.grant ? { grant: t.grant } : {}),
  ...(t.site ? { site: t.site } : {}),
});

/** A token's grant with canonical addresses and names. */
function canonicalGrant(g: TokenGrant): TokenGrant {
  return {
    services: g.services,
    ...(g.sites ? { sites: [...new Set(g.sites)] } : {}),
    ...(g.addresses ? { addresses: canonicalAddresses(g.addresses) } : {}),
    ...(g.names ? { names: canonicalNames(g.names) } : {}),
  };
}

/** An address as a socket reports it (`::ffff:10.1.2.3`), as grants store it. */
export function sourceAddress(ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  const a = canonicalAddresses([ip.replace(/^::ffff:(?=\d+\.)/i, '')]);
  return a[0];
}

/**
 * Enrollment tokens and the trade of one for an identity. A token's remaining uses are
 * decremented synchronously before any await, so concurrent enrollments can never
 * overspend it; the decrement is written in the same batch as the new principal.
 */
export class Enrollment {
  /** Successful enrollments since start. */
  enrolled = 0;
  constructor(
    private readonly registry: Registry,
    private readonly config: CoreConfig,
    private readonly clock: Clock,
  ) {}

  async createToken(input: { for: EnrollKind; uses?: number | undefined; expiresInMs?: number | undefined; note?: string | undefined; grant?: TokenGrant | undefined; site?: string | undefined }): Promise<TokenView & { token: string }> {
    if (input.for === 'site-server' && !input.grant) {
      throw new OutpostError(CoreErrors.GRANT_REQUIRED, "a site-server token needs a grant: { services: { task?, package?: { constrained }, netboot?, gateway? }, sites?, addresses?, names? }", { status: 400 });
    }
    if (input.for === 'agent' && input.grant) {
      throw new OutpostError(CoreErrors.GRANT_NOT_ALLOWED, 'an agent token carries no grant: agents are granted nothing beyond their own record', { status: 400 });
    }
    if (input.for === 'site-server' && input.site !== undefined) {
      throw new OutpostError(CoreErrors.GRANT_NOT_ALLOWED, 'a site-server token names its sites in its grant (grant.sites), not in site', { status: 400 });
    }
    if (input.grant?.sites) this.registry.checkSites(input.grant.sites);
    if (input.site !== undefined) this.registry.checkSites([input.site]);
    const secret = newSecret();
    const now = this.clock.now();
    const uses = input.uses ?? 1;
    const record: TokenRecord = {
      id: newId('et'),
      hash: hashSecret(secret),
      for: input.for,
      uses,
      usesLeft: uses,
      expiresAt: now + (input.expiresInMs ?? this.config.enrollment.defaultExpiry),
      createdAt: now,
      note: input.note,
      ...(input.grant ? { grant: canonicalGrant(input.grant) } : {}),
      ...(input.site !== undefined ? { site: input.site } : {}),
    };
    await this.registry.store.putToken(record);
    return { ...tokenView(record), token: `${record.id}.${secret}` };
  }

  listTokens(): TokenView[] {
    return [...this.registry.store.tokens.values()].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id)).map(tokenView);
  }

  async deleteToken(id: string): Promise<void> {
    if (!this.registry.store.tokens.has(id)) {
      throw new OutpostError(CoreErrors.TOKEN_NOT_FOUND, `no enrollment token with id '${id}'`, { status: 404 });
    }
    await this.registry.store.deleteToken(id);
  }

  /**
   * Checks the token and takes one use from it (in memory; the caller persists it).
   * `check` runs on the valid token before the use is taken: what it throws leaves the
   * token unspent.
   */
  #consume(token: string, kind: EnrollKind, check: (record: TokenRecord) => void = () => undefined): { record: TokenRecord; undo: () => void } {
    const record = checkEnrollToken(this.registry.store.tokens, token, kind, this.clock.now());
    check(record);
    record.usesLeft -= 1;
    return { record, undo: () => void (record.usesLeft += 1) };
  }

  /**
   * The grant a site server enrolls under: the token's services, sites, names and
   * addresses (or, when it names none, the request's source address: trust on first use
   * under the admin's token). What it asks for must be within it: else 403
   * `CORE_GRANT_EXCEEDED` naming every refused part.
   */
  #grantFor(t: TokenRecord, req: Extract<EnrollRequest, { kind: 'site-server' }>): SiteServerGrant {
    const g = t.grant ?? { services: {} };
    // Through a gateway the core sees the gateway's address, not the site server's: that
    // address is no evidence of where the new site server is, and is never approved for it.
    const seen = sourceAddress(req.sourceIp);
    const viaGateway = seen !== undefined && [...this.registry.store.siteServers.values()].some((ss) => this.registry.granted(ss.id, 'gateway') && ss.grant.addresses.includes(seen));
    const source = viaGateway ? undefined : seen;
    const fromGrant = (g.addresses ?? []).length > 0;
    const grant: SiteServerGrant = {
      services: g.services,
      addresses: fromGrant ? [...g.addresses!] : source ? [source] : [],
      names: [...(g.names ?? [])],
      approvedBy: fromGrant ? 'grant' : 'enrollment',
    };
    const beyond = claimsBeyond(grant, req.services, req.tickleAddress);
    if (beyond.length > 0) {
      const hint = viaGateway && !fromGrant ? ` (the enrollment came from ${seen}, a gateway's address, which is never approved for another site server: name its addresses in the token, outpost token create --address)` : '';
      throw new OutpostError(CoreErrors.GRANT_EXCEEDED, `the enrollment asks for more than the token grants: ${beyond.join('; ')}${hint}`, {
        status: 403,
        details: { refused: beyond, approvedAddresses: grant.addresses, approvedNames: grant.names },
      });
    }
    return grant;
  }

  async enroll(req: EnrollRequest): Promise<EnrollResult> {
    // A bad CSR is refused before the token is spent.
    const certifier = req.csr === undefined ? undefined : certifiers.get(this.registry);
    const certify = certifier && req.csr !== undefined ? await certifier.prepare(req.csr, req.kind) : undefined;
    let grant: SiteServerGrant | undefined;
    const { record, undo } = this.#consume(req.token, req.kind, (t) => {
      if (req.kind !== 'site-server') return;
      grant = this.#grantFor(t, req);
      certify?.approve(grant);
    });
    const secret = newSecret();
    const base = {
      name: req.name,
      authHash: hashSecret(secret),
      udpKey: datagramKey(secret).toString('hex'),
      createdAt: this.clock.now(),
    };
    const consumed = { ...record };
    try {
      if (req.kind === 'agent') {
        const agent: AgentRecord = { id: newId('ag'), ...base, macs: req.macs, ips: req.ips, os: req.os };
        await this.registry.addAgent(agent, consumed);
        this.enrolled++;
        const cert = certify ? await certify.issue(agent.id) : {};
        const workKey = workKeys.get(this.registry);
        return {
          ...cert,
          ...(workKey === undefined ? {} : { workKey }),
          id: agent.id,
          kind: 'agent',
          credential: `${agent.id}.${secret}`,
          datagramPort: this.registry.datagramPort,
          heartbeatIntervalMs: this.config.agents.heartbeatInterval,
          configPollIntervalMs: this.config.agents.configPollInterval,
        };
      }
      const ss: SiteServerRecord = {
        id: newId('ss'),
        ...base,
        ...(req.address ? { reportedAddress: req.address } : {}),
        tickleAddress: req.tickleAddress,
        services: req.services,
        sites: record.grant?.sites ?? [],
        grant: grant!,
      };
      await this.registry.addSiteServer(ss, consumed);
      this.enrolled++;
      const cert = certify ? await certify.issue(ss.id) : {};
      return {
        ...cert,
        id: ss.id,
        kind: 'site-server',
        credential: `${ss.id}.${secret}`,
        datagramPort: this.registry.datagramPort,
        heartbeatIntervalMs: this.config.siteServers.heartbeatInterval,
      };
    } catch (err) {
      undo();
      throw err;
    }
  }
}
