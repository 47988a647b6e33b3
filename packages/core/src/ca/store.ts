import { allValues, sublevel, type BatchOp, type Database, type Sublevel } from '@outpost/common';

export type CertKind = 'agent' | 'site-server' | 'core';

/** One issued certificate. Serials are lowercase hex without leading zeros. */
export interface CertRecord {
  serial: string;
  principal: string;
  kind: CertKind;
  issuedAt: number;
  notAfter: number;
  revokedAt?: number | undefined;
  reason?: string | undefined;
  /** Waiting in the quarantine list (policy `hold`) for an admin's approval. */
  held?: boolean | undefined;
}

/** A change gateways apply: `revoke` (refuse for good), `hold` (refuse until `release`). */
export interface RevocationEvent {
  seq: number;
  serial: string;
  type: 'revoke' | 'hold' | 'release';
  at: number;
  notAfter: number;
}

export interface BlockRecord {
  id: string;
  at: number;
  reason?: string | undefined;
}

const put = <V>(s: Sublevel<V>, key: string, value: V): BatchOp => ({ type: 'put', sublevel: s, key, value });
const del = <V>(s: Sublevel<V>, key: string): BatchOp => ({ type: 'del', sublevel: s, key });
const seqKey = (seq: number): string => seq.toString().padStart(15, '0');

/** Normalises a certificate serial from any source (Node, x509, user input). */
export function normalizeSerial(serial: string): string {
  return serial.replace(/:/g, '').toLowerCase().replace(/^0+(?=.)/, '');
}

/**
 * Issued certificates, the revocation event feed and blocked principals, over the
 * core's db (sublevels `ca-certs`, `ca-events`, `ca-blocked`). Everything is loaded at
 * start; a certificate change and its feed event are written in one batch.
 */
export class CaStore {
  readonly certs = new Map<string, CertRecord>();
  readonly byPrincipal = new Map<string, Set<string>>();
  readonly blocked = new Map<string, BlockRecord>();
  events: RevocationEvent[] = [];
  seq = 0;
  readonly #certs: Sublevel<CertRecord>;
  readonly #events: Sublevel<RevocationEvent>;
  readonly #blocked: Sublevel<BlockRecord>;

  constructor(private readonly db: Database) {
    this.#certs = sublevel<CertRecord>(db, 'ca-certs');
    this.#events = sublevel<RevocationEvent>(db, 'ca-events');
    this.#blocked = sublevel<BlockRecord>(db, 'ca-blocked');
  }

  async load(): Promise<void> {
    for (const c of await allValues(this.#certs)) this.#index(c);
    for (const b of await allValues(this.#blocked)) this.blocked.set(b.id, b);
    this.events = await allValues(this.#events);
    this.seq = this.events.at(-1)?.seq ?? 0;
  }

  #index(c: CertRecord): void {
    this.certs.set(c.serial, c);
    let set = this.byPrincipal.get(c.principal);
    if (!set) this.byPrincipal.set(c.principal, (set = new Set()));
    set.add(c.serial);
  }

  /** Writes certificates (new or changed) and the events they cause, atomically. */
  async write(certs: CertRecord[], events: Array<Omit<RevocationEvent, 'seq'>>, extra: BatchOp[] = []): Promise<RevocationEvent[]> {
    const numbered = events.map((e, i) => ({ ...e, seq: this.seq + i + 1 }));
    const ops: BatchOp[] = [
      ...certs.map((c) => put(this.#certs, c.serial, c)),
      ...numbered.map((e) => put(this.#events, seqKey(e.seq), e)),
      ...extra,
    ];
    await this.db.batch(ops);
    this.seq += numbered.length;
    for (const c of certs) this.#index(c);
    this.events.push(...numbered);
    return numbered;
  }

  /** Another core changed a certificate, a feed event or a block. */
  remote(sub: 'ca-certs' | 'ca-events' | 'ca-blocked', key: string, value: unknown): void {
    if (sub === 'ca-blocked') return this.applyBlock(value as BlockRecord | undefined, key);
    if (sub === 'ca-certs') {
      const old = this.certs.get(key);
      if (value) this.#index(value as CertRecord);
      else if (old) {
        this.certs.delete(key);
        this.byPrincipal.get(old.principal)?.delete(key);
      }
      return;
    }
    const e = value as RevocationEvent | undefined;
    if (!e) {
      this.events = this.events.filter((x) => seqKey(x.seq) !== key);
      return;
    }
    if (this.events.some((x) => x.seq === e.seq)) return;
    this.events.push(e);
    this.events.sort((a, z) => a.seq - z.seq);
    this.seq = Math.max(this.seq, e.seq);
  }

  blockOp(b: BlockRecord): BatchOp {
    return put(this.#blocked, b.id, b);
  }

  unblockOp(id: string): BatchOp {
    return del(this.#blocked, id);
  }

  applyBlock(b: BlockRecord | undefined, id: string): void {
    if (b) this.blocked.set(id, b);
    else this.blocked.delete(id);
  }

  /** Drops certificates and events past their expiry (a gateway refuses them anyway). */
  async prune(now: number): Promise<number> {
    const dead = [...this.certs.values()].filter((c) => c.notAfter < now);
    const oldEvents = this.events.filter((e) => e.notAfter < now);
    if (dead.length === 0 && oldEvents.length === 0) return 0;
    const ops = [
      ...dead.map((c) => del(this.#certs, c.serial)),
      ...oldEvents.map((e) => del(this.#events, seqKey(e.seq))),
    ];
    await this.db.batch(ops);
    for (const c of dead) {
      this.certs.delete(c.serial);
      this.byPrincipal.get(c.principal)?.delete(c.serial);
    }
    const gone = new Set(oldEvents.map((e) => e.seq));
    this.events = this.events.filter((e) => !gone.has(e.seq));
    return dead.length;
  }
}
