import { sublevel, type BatchOp, type Database, type Sublevel } from '@outpost/common';
import type { DownloadRecord, PackageRecord, ServerStatusRecord } from './model.js';

const pairKey = (packageId: string, otherId: string): string => `${packageId}!${otherId}`;

/**
 * Packages, per-server status and agent download reports in level (sublevels
 * `packages`, `package-status`, `package-downloads`), loaded into memory at start and
 * written through. A package and its status rows change in one batch.
 */
export class PackageStore {
  readonly packages = new Map<string, PackageRecord>();
  /** packageId → serverId → status. */
  readonly status = new Map<string, Map<string, ServerStatusRecord>>();
  readonly downloads = new Map<string, Map<string, DownloadRecord>>();
  readonly #packages: Sublevel<PackageRecord>;
  readonly #status: Sublevel<ServerStatusRecord>;
  readonly #downloads: Sublevel<DownloadRecord>;

  constructor(private readonly db: Database) {
    this.#packages = sublevel<PackageRecord>(db, 'packages');
    this.#status = sublevel<ServerStatusRecord>(db, 'package-status');
    this.#downloads = sublevel<DownloadRecord>(db, 'package-downloads');
  }

  async load(): Promise<void> {
    for (const p of await this.#packages.values().all()) this.packages.set(p.id, p);
    for (const s of await this.#status.values().all()) this.#statusMap(s.packageId).set(s.serverId, s);
    for (const d of await this.#downloads.values().all()) {
      const m = this.downloads.get(d.packageId) ?? new Map<string, DownloadRecord>();
      m.set(d.agentId, d);
      this.downloads.set(d.packageId, m);
    }
  }

  /** Another core changed a package, a server's status of one, or an agent's download report. */
  remote(sub: 'packages' | 'package-status' | 'package-downloads', key: string, value: unknown): void {
    if (sub === 'packages') {
      if (value) this.packages.set(key, value as PackageRecord);
      else this.packages.delete(key);
      return;
    }
    const bang = key.indexOf('!');
    const [packageId, otherId] = [key.slice(0, bang), key.slice(bang + 1)];
    const maps = sub === 'package-status' ? this.status : this.downloads;
    let m = maps.get(packageId) as Map<string, unknown> | undefined;
    if (value === undefined) {
      m?.delete(otherId);
      return;
    }
    if (!m) {
      m = new Map();
      maps.set(packageId, m as never);
    }
    m.set(otherId, value);
  }

  #statusMap(packageId: string): Map<string, ServerStatusRecord> {
    let m = this.status.get(packageId);
    if (!m) {
      m = new Map();
      this.status.set(packageId, m);
    }
    return m;
  }

  statusOf(packageId: string): Map<string, ServerStatusRecord> {
    return this.status.get(packageId) ?? new Map();
  }

  /** Writes a package and status rows (put or delete) atomically. */
  async write(pkg: PackageRecord | undefined, statusPuts: ServerStatusRecord[] = [], statusDeletes: { packageId: string; serverId: string }[] = []): Promise<void> {
    const ops: BatchOp[] = [];
    if (pkg) ops.push({ type: 'put', sublevel: this.#packages, key: pkg.id, value: pkg });
    for (const s of statusPuts) ops.push({ type: 'put', sublevel: this.#status, key: pairKey(s.packageId, s.serverId), value: s });
    for (const d of statusDeletes) ops.push({ type: 'del', sublevel: this.#status, key: pairKey(d.packageId, d.serverId) });
    if (ops.length === 0) return;
    await this.db.batch(ops);
    if (pkg) this.packages.set(pkg.id, pkg);
    for (const s of statusPuts) this.#statusMap(s.packageId).set(s.serverId, s);
    for (const d of statusDeletes) this.status.get(d.packageId)?.delete(d.serverId);
  }

  /** Deletes a package with all its status rows and download reports. */
  async deletePackage(id: string): Promise<void> {
    const ops: BatchOp[] = [{ type: 'del', sublevel: this.#packages, key: id }];
    for (const serverId of this.statusOf(id).keys()) ops.push({ type: 'del', sublevel: this.#status, key: pairKey(id, serverId) });
    for (const agentId of (this.downloads.get(id) ?? new Map<string, DownloadRecord>()).keys()) {
      ops.push({ type: 'del', sublevel: this.#downloads, key: pairKey(id, agentId) });
    }
    await this.db.batch(ops);
    this.packages.delete(id);
    this.status.delete(id);
    this.downloads.delete(id);
  }

  async putDownload(d: DownloadRecord): Promise<void> {
    await this.#downloads.put(pairKey(d.packageId, d.agentId), d);
    const m = this.downloads.get(d.packageId) ?? new Map<string, DownloadRecord>();
    m.set(d.agentId, d);
    this.downloads.set(d.packageId, m);
  }
}
