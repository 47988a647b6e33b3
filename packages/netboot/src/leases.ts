import { allValues, sublevel, type Database, type Sublevel } from '@outpost/common';
import { BoundedMap } from './limits.js';

export interface Lease {
  mac: string;
  ip: string;
  expiresAt: number;
  hostname?: string | undefined;
}

export interface PoolConfig {
  rangeStart: string;
  rangeEnd: string;
  leaseTimeMs: number;
  offerHoldMs: number;
  declineHoldMs: number;
  reservations: ReadonlyArray<{ mac: string; ip: string; hostname?: string | undefined }>;
}

const toInt = (ip: string): number => ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
const toIp = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
/** Largest pool scanned for a free address (a /16). */
const MAX_POOL = 65_536;

/**
 * Full DHCP mode's address pool: reservations, leases persisted in level (sublevel
 * `leases`, keyed by MAC), offers held in memory for `offerHoldMs`, declined addresses
 * left alone for `declineHoldMs`.
 */
export class LeasePool {
  readonly #db: Sublevel<Lease>;
  readonly #byMac = new Map<string, Lease>();
  readonly #byIp = new Map<string, Lease>();
  readonly #offers = new BoundedMap<string, { ip: string; until: number }>(10_000);
  readonly #declined = new Map<string, number>();
  readonly #reservedByMac = new Map<string, { ip: string; hostname?: string | undefined }>();
  readonly #reservedIps = new Set<string>();
  readonly #start: number;
  readonly #end: number;

  constructor(
    db: Database,
    private readonly cfg: PoolConfig,
    private readonly now: () => number,
  ) {
    this.#db = sublevel(db, 'leases');
    this.#start = toInt(cfg.rangeStart);
    this.#end = Math.min(toInt(cfg.rangeEnd), this.#start + MAX_POOL - 1);
    for (const r of cfg.reservations) {
      this.#reservedByMac.set(r.mac, { ip: r.ip, hostname: r.hostname });
      this.#reservedIps.add(r.ip);
    }
  }

  async load(): Promise<void> {
    for (const l of await allValues(this.#db)) {
      this.#byMac.set(l.mac, l);
      this.#byIp.set(l.ip, l);
    }
  }

  get size(): number {
    return this.#byMac.size;
  }

  lease(mac: string): Lease | undefined {
    return this.#byMac.get(mac);
  }

  #inRange(ip: string): boolean {
    const n = toInt(ip);
    return n >= this.#start && n <= this.#end;
  }

  /** True when `ip` may be given to `mac` now. */
  #free(ip: string, mac: string, now: number): boolean {
    const r = this.#reservedByMac.get(mac);
    if (r) return r.ip === ip;
    if (this.#reservedIps.has(ip)) return false;
    if (!this.#inRange(ip)) return false;
    const l = this.#byIp.get(ip);
    if (l && l.mac !== mac && l.expiresAt > now) return false;
    const d = this.#declined.get(ip);
    if (d !== undefined && d > now) return false;
    for (const [m, o] of this.#offers) if (o.ip === ip && m !== mac && o.until > now) return false;
    return true;
  }

  /** The address to offer `mac`: its reservation, its lease, its held offer, the one it asks for, else the lowest free one. */
  offer(mac: string, requested?: string): string | undefined {
    const now = this.now();
    const r = this.#reservedByMac.get(mac);
    let ip = r?.ip;
    if (!ip) {
      const candidates = [this.#byMac.get(mac)?.ip, this.#offers.get(mac)?.ip, requested].filter((x): x is string => x !== undefined);
      ip = candidates.find((c) => this.#free(c, mac, now));
    }
    if (!ip) {
      const taken = new Set<string>();
      for (const l of this.#byIp.values()) if (l.expiresAt > now && l.mac !== mac) taken.add(l.ip);
      for (const [m, o] of this.#offers) if (o.until > now && m !== mac) taken.add(o.ip);
      for (const [d, until] of this.#declined) if (until > now) taken.add(d);
      for (let n = this.#start; n <= this.#end; n++) {
        const c = toIp(n);
        if (!taken.has(c) && !this.#reservedIps.has(c)) {
          ip = c;
          break;
        }
      }
    }
    if (ip) this.#offers.set(mac, { ip, until: now + this.cfg.offerHoldMs });
    return ip;
  }

  /** REQUEST: leases `ip` to `mac` when allowed (persisted before the ACK); undefined → NAK. */
  async commit(mac: string, ip: string, hostname?: string): Promise<Lease | undefined> {
    const now = this.now();
    if (!this.#free(ip, mac, now)) return undefined;
    const old = this.#byMac.get(mac);
    const lease: Lease = { mac, ip, expiresAt: now + this.cfg.leaseTimeMs, hostname: hostname ?? this.#reservedByMac.get(mac)?.hostname };
    const ops: Array<{ type: 'put'; key: string; value: Lease }> = [{ type: 'put', key: mac, value: lease }];
    const stale = this.#byIp.get(ip);
    if (stale && stale.mac !== mac) {
      this.#byMac.delete(stale.mac);
      await this.#db.del(stale.mac);
    }
    await this.#db.batch(ops);
    if (old && old.ip !== ip) this.#byIp.delete(old.ip);
    this.#byMac.set(mac, lease);
    this.#byIp.set(ip, lease);
    this.#offers.delete(mac);
    return lease;
  }

  async release(mac: string, ip: string): Promise<boolean> {
    const l = this.#byMac.get(mac);
    if (!l || l.ip !== ip) return false;
    this.#byMac.delete(mac);
    this.#byIp.delete(ip);
    await this.#db.del(mac);
    return true;
  }

  async decline(mac: string, ip: string): Promise<void> {
    this.#declined.set(ip, this.now() + this.cfg.declineHoldMs);
    if (this.#declined.size > 10_000) this.#declined.delete(this.#declined.keys().next().value!);
    this.#offers.delete(mac);
    await this.release(mac, ip);
  }
}
