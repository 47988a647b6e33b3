import { OutpostError, type Logger } from '@outpost/common';
import type { Registry, Clock } from '../registry.js';
import type { Authority } from './authority.js';
import type { CaConfig } from './config.js';
import type { SiteServerGrant } from '../model.js';
import { CaErrors } from './errors.js';
import { approvedCertificateNames } from './names.js';
import { normalizeSerial, type CaStore, type CertKind, type CertRecord, type RevocationEvent } from './store.js';

export interface CertificateBundle {
  /** The issued certificate (PEM). */
  certificate: string;
  /** The CA certificate (PEM): what the holder trusts for TLS from now on. */
  caCertificate: string;
  /** The id of the core that issued it (in the certificate's SAN URI). */
  coreId: string;
  /** The core's URL (the target to ask a gateway for). */
  coreUrl: string;
  serial: string;
  notAfter: string;
  /** Renew from this time on. */
  renewAfter: string;
}

export interface QuarantineEntry {
  serial: string;
  principal: string;
  kind: CertKind;
  issuedAt: string;
  notAfter: string;
}

/**
 * Certificates as a service of the core: issue (enrollment, renewal), revoke (block,
 * principal deleted), the quarantine list, the CRL and the revocation feed gateways
 * follow. Counters for `/stats`.
 */
export class CertificateService {
  readonly counters = { issued: 0, renewed: 0, revoked: 0, badCsr: 0, namesRefused: 0, crlBuilt: 0 };
  #crl: { der: Buffer; seq: number; builtAt: number } | undefined;
  #crlBuilding: Promise<Buffer> | undefined;

  constructor(
    readonly authority: Authority,
    readonly store: CaStore,
    private readonly config: CaConfig,
    private readonly registry: Registry,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly coreUrl: () => string,
  ) {}

  /**
   * Verifies a CSR now. A site server's certificate carries only names `approve` let
   * through (403 `CORE_CA_NAME_NOT_APPROVED` for any other); an agent's carries none,
   * whatever its CSR asks. `issue` makes the certificate once the principal exists.
   */
  async prepare(csr: string, kind: CertKind): Promise<{ names: string[]; approve(approved: Pick<SiteServerGrant, 'addresses' | 'names'>): void; issue(principal: string): Promise<CertificateBundle> }> {
    let checked: Awaited<ReturnType<Authority['checkCsr']>>;
    try {
      checked = await this.authority.checkCsr(csr);
    } catch (err) {
      this.counters.badCsr++;
      throw err;
    }
    let names: string[] = [];
    return {
      names: checked.names,
      approve: (approved) => {
        if (kind !== 'site-server') return;
        try {
          names = approvedCertificateNames(checked.names, approved);
        } catch (err) {
          this.counters.namesRefused++;
          throw err;
        }
      },
      issue: (principal) => this.#issue(principal, kind, checked.publicKey, names),
    };
  }

  async #issue(principal: string, kind: CertKind, publicKey: Awaited<ReturnType<Authority['checkCsr']>>['publicKey'], names: string[]): Promise<CertificateBundle> {
    if (this.store.blocked.has(principal)) {
      throw new OutpostError(CaErrors.BLOCKED, `${principal} is blocked: no certificate is issued to it`, { status: 403 });
    }
    const issued = await this.authority.issue({ publicKey, principal, kind, names: kind === 'agent' ? [] : names, lifetimeMs: this.config.certificateLifetime });
    const now = this.clock.now();
    const hold = this.config.quarantine === 'hold' && kind === 'agent';
    const rec: CertRecord = { serial: issued.serial, principal, kind, issuedAt: now, notAfter: issued.notAfter, ...(hold ? { held: true } : {}) };
    await this.store.write([rec], hold ? [{ serial: rec.serial, type: 'hold', at: now, notAfter: rec.notAfter }] : []);
    this.counters.issued++;
    this.log.info({ principal, kind, serial: issued.serial, held: hold }, 'certificate issued');
    return this.#bundle(issued.pem, issued.serial, issued.notAfter);
  }

  #bundle(pem: string, serial: string, notAfter: number): CertificateBundle {
    return {
      certificate: pem,
      caCertificate: this.authority.certPem,
      coreId: this.authority.coreId,
      coreUrl: this.coreUrl(),
      serial,
      notAfter: new Date(notAfter).toISOString(),
      renewAfter: new Date(Math.max(notAfter - this.config.renewBefore, this.clock.now())).toISOString(),
    };
  }

  /** A new certificate for an existing principal (renewal, or a first one after enrolling without CSR). */
  async renew(principal: string, kind: CertKind, csr: string): Promise<CertificateBundle> {
    const finish = await this.prepare(csr, kind);
    if (kind === 'site-server') {
      const ss = this.registry.store.siteServers.get(principal);
      try {
        finish.approve(ss?.grant ?? { addresses: [], names: [] });
      } catch (err) {
        this.log.warn({ principal, names: finish.names }, 'renewal refused: the CSR names what the grant does not approve');
        throw err;
      }
    }
    const wasHeld = [...(this.store.byPrincipal.get(principal) ?? [])].some((s) => this.store.certs.get(s)?.held);
    const bundle = await finish.issue(principal);
    this.counters.renewed++;
    // An approved principal stays approved across renewals.
    if (!wasHeld && this.config.quarantine === 'hold') await this.approve(principal).catch(() => undefined);
    return bundle;
  }

  /** Revokes every live certificate of a principal. Returns the serials revoked. */
  async revokePrincipal(principal: string, reason: string): Promise<string[]> {
    const now = this.clock.now();
    const recs = [...(this.store.byPrincipal.get(principal) ?? [])]
      .map((s) => this.store.certs.get(s)!)
      .filter((c) => c.revokedAt === undefined && c.notAfter > now);
    if (recs.length === 0) return [];
    const changed = recs.map((c) => ({ ...c, revokedAt: now, reason, held: undefined }));
    await this.store.write(
      changed,
      changed.map((c) => ({ serial: c.serial, type: 'revoke' as const, at: now, notAfter: c.notAfter })),
    );
    this.counters.revoked += changed.length;
    this.#crl = undefined;
    this.log.info({ principal, serials: changed.map((c) => c.serial), reason }, 'certificates revoked');
    return changed.map((c) => c.serial);
  }

  /** Revokes one certificate by serial. */
  async revokeSerial(serialIn: string, reason: string): Promise<CertRecord> {
    const serial = normalizeSerial(serialIn);
    const rec = this.store.certs.get(serial);
    if (!rec) throw new OutpostError(CaErrors.NOT_FOUND, `no certificate with serial ${serial}`, { status: 404 });
    if (rec.revokedAt !== undefined) return rec;
    const now = this.clock.now();
    const changed = { ...rec, revokedAt: now, reason, held: undefined };
    await this.store.write([changed], [{ serial, type: 'revoke', at: now, notAfter: rec.notAfter }]);
    this.counters.revoked++;
    this.#crl = undefined;
    return changed;
  }

  /** Blocks a principal: its certificates are revoked and no new one is issued. */
  async block(principal: string, reason: string): Promise<string[]> {
    const b = { id: principal, at: this.clock.now(), reason };
    await this.store.write([], [], [this.store.blockOp(b)]);
    this.store.applyBlock(b, principal);
    const revoked = await this.revokePrincipal(principal, reason);
    this.registry.agentAccessChanged(principal);
    return revoked;
  }

  async unblock(principal: string): Promise<void> {
    if (!this.store.blocked.has(principal)) throw new OutpostError(CaErrors.NOT_FOUND, `${principal} is not blocked`, { status: 404 });
    await this.store.write([], [], [this.store.unblockOp(principal)]);
    this.store.applyBlock(undefined, principal);
    this.registry.agentAccessChanged(principal);
  }

  quarantine(): QuarantineEntry[] {
    const now = this.clock.now();
    return [...this.store.certs.values()]
      .filter((c) => c.held && c.revokedAt === undefined && c.notAfter > now)
      .sort((a, b) => a.issuedAt - b.issuedAt)
      .map((c) => ({ serial: c.serial, principal: c.principal, kind: c.kind, issuedAt: new Date(c.issuedAt).toISOString(), notAfter: new Date(c.notAfter).toISOString() }));
  }

  /** Releases a principal's held certificates. */
  async approve(principal: string): Promise<string[]> {
    const held = [...(this.store.byPrincipal.get(principal) ?? [])].map((s) => this.store.certs.get(s)!).filter((c) => c.held && c.revokedAt === undefined);
    if (held.length === 0) throw new OutpostError(CaErrors.NOT_QUARANTINED, `${principal} has no certificate in the quarantine list`, { status: 409 });
    const now = this.clock.now();
    const changed = held.map((c) => ({ ...c, held: undefined }));
    await this.store.write(changed, changed.map((c) => ({ serial: c.serial, type: 'release' as const, at: now, notAfter: c.notAfter })));
    this.log.info({ principal }, 'quarantined certificates approved');
    return changed.map((c) => c.serial);
  }

  /** Revokes the certificates of principals that no longer exist (deleted agents and site servers). */
  async reconcile(): Promise<number> {
    let n = 0;
    const now = this.clock.now();
    for (const [principal, serials] of this.store.byPrincipal) {
      if (this.registry.store.agents.has(principal) || this.registry.store.siteServers.has(principal)) continue;
      const live = [...serials].some((s) => {
        const c = this.store.certs.get(s);
        return c !== undefined && c.revokedAt === undefined && c.notAfter > now && c.kind !== 'core';
      });
      if (live) n += (await this.revokePrincipal(principal, 'deleted')).length;
    }
    return n;
  }

  /** Feed for gateways: events after `since` (at most `limit`). */
  events(since: number, limit: number): { seq: number; items: RevocationEvent[]; next?: number } {
    const items: RevocationEvent[] = [];
    for (const e of this.store.events) {
      if (e.seq <= since) continue;
      items.push(e);
      if (items.length >= limit) break;
    }
    const last = items.at(-1)?.seq;
    return last !== undefined && last < this.store.seq ? { seq: this.store.seq, items, next: last } : { seq: this.store.seq, items };
  }

  /** The current CRL (DER): unexpired revoked certificates. Rebuilt after a change or at half its lifetime. */
  async crlDer(): Promise<Buffer> {
    const now = this.clock.now();
    if (this.#crl && this.#crl.seq === this.store.seq && now - this.#crl.builtAt < this.config.crlLifetime / 2) return this.#crl.der;
    this.#crlBuilding ??= (async () => {
      try {
        const seq = this.store.seq;
        const entries = [...this.store.certs.values()].filter((c) => c.revokedAt !== undefined && c.notAfter > now).map((c) => ({ serial: c.serial, revokedAt: c.revokedAt! }));
        const der = await this.authority.crl(entries, Math.max(1, seq), this.config.crlLifetime);
        this.#crl = { der, seq, builtAt: now };
        this.counters.crlBuilt++;
        return der;
      } finally {
        this.#crlBuilding = undefined;
      }
    })();
    return this.#crlBuilding;
  }

  signProbe(nonce: string): string {
    return this.authority.signProbe(nonce);
  }

  stats(): Record<string, unknown> {
    let live = 0;
    let revoked = 0;
    let held = 0;
    for (const c of this.store.certs.values()) {
      if (c.revokedAt !== undefined) revoked++;
      else live++;
      if (c.held) held++;
    }
    return { coreId: this.authority.coreId, certificates: { live, revoked, held }, blocked: this.store.blocked.size, feedSeq: this.store.seq, ...this.counters };
  }
}
