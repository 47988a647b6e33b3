import type { Readable } from 'node:stream';
import { isOutpostError, type BatchOp, type Logger } from '@outpost/common';
import type { PackageRecord } from '../packages/model.js';
import type { PackageService } from '../packages/service.js';
import type { HierRunRecord, OriginRecord, ParentRecord } from './model.js';
import type { Entry } from './protocol.js';
import { DOWN, HierarchyStore, splitRootKey } from './store.js';

const DOWN_SET: ReadonlySet<string> = new Set(DOWN);

export interface ApplyDeps {
  store: HierarchyStore;
  log: Logger;
  /** Hands a replicated record to the module that keeps it in memory (as another core's change). */
  dispatch(sublevel: string, key: string, value: unknown): void;
  packages(): PackageService | undefined;
  /** The bytes of package content from the parent (mutual TLS), checked by the package service's upload. */
  fetchContent(parent: ParentRecord, sha: string): Promise<Readable>;
  /** A hierarchy run arrived (or changed). */
  onRun(run: HierRunRecord): Promise<void>;
}

/**
 * Applies what a parent sends down on the child: each record is written where its module
 * keeps it (same sublevel and key), with an origin mark naming the core that owns it and
 * the link's cursor in the same batch; then the module's memory follows (dispatch).
 * Packages go through the package service (content fetched from the parent, checked by
 * hash, staged to this core's package servers as a local package would be). A child's own
 * item with the same key is replaced (the parent owns the name) and counted.
 */
export class DownApplier {
  readonly origins = new Map<string, OriginRecord>();
  replaced = 0;
  applied = 0;
  /** Entries that arrived again after they were applied (at or below the cursor), skipped. */
  skipped = 0;
  #snapshot: Set<string> | undefined;

  constructor(private readonly deps: ApplyDeps) {}

  async load(): Promise<void> {
    for (const [k, v] of await this.deps.store.list(this.deps.store.origin)) this.origins.set(k, v);
  }

  /** The core that owns item `key` of `sublevel` here, when it is not this core. */
  ownerOf(sublevel: string, key: string): OriginRecord | undefined {
    return this.origins.get(`${sublevel}!${key}`);
  }

  /**
   * Applies a page and returns the cursor it leaves (never lower than before: entries at or
   * below `parent.downApplied` were applied already and are skipped; a complete copy sets it).
   */
  async apply(parent: ParentRecord, entries: Entry[], to: number, snapshot: boolean, done: boolean): Promise<number> {
    const { store } = this.deps;
    if (snapshot) this.#snapshot ??= new Set();
    else {
      const before = entries.length;
      entries = entries.filter((e) => e.s > parent.downApplied);
      this.skipped += before - entries.length;
      if (to <= parent.downApplied) return parent.downApplied;
    }
    const ops: BatchOp[] = [];
    const dispatches: Array<[string, string, unknown]> = [];
    const runs: HierRunRecord[] = [];
    const origins = new Map<string, OriginRecord | undefined>();
    const mine = await this.#ownItems(entries);
    for (const e of entries) {
      for (const op of e.o) {
        const split = splitRootKey(op.k);
        if (!split || !DOWN_SET.has(split[0])) continue;
        const [sub, key] = split;
        const okey = `${sub}!${key}`;
        const value: unknown = op.v === undefined ? undefined : JSON.parse(op.v);
        this.#snapshot?.add(okey);
        const owner = this.origins.get(okey);
        if (value !== undefined && !owner && !origins.has(okey) && mine.has(okey)) {
          this.replaced++;
          this.deps.log.warn({ sublevel: sub, key, parent: parent.parentId }, "an item of this core is replaced by the parent's of the same name");
        }
        if (sub === 'packages') await this.#package(parent, key, value as PackageRecord | undefined);
        else {
          ops.push(value === undefined ? store.del(store.raw(sub), key) : store.put(store.raw(sub), key, value));
          dispatches.push([sub, key, value]);
        }
        if (sub === 'hier-runs' && value !== undefined) runs.push(value as HierRunRecord);
        // The mark is written once: an item of the parent changed again keeps it (as of this page: deleted earlier in it, it is marked again).
        const marked = origins.has(okey) ? origins.get(okey) : owner;
        if (value === undefined || marked?.core !== parent.parentId) origins.set(okey, value === undefined ? undefined : { core: parent.parentId, editable: [] });
        this.applied++;
      }
    }
    if (snapshot && done) {
      // What the parent no longer has goes: a complete copy lists every item it owns.
      for (const [okey, o] of this.origins) {
        if (o.core !== parent.parentId || this.#snapshot!.has(okey) || origins.has(okey)) continue;
        const [sub, key] = splitRootKey(`!${okey}`)!;
        if (sub === 'packages') await this.#package(parent, key, undefined);
        else {
          ops.push(store.del(store.raw(sub), key));
          dispatches.push([sub, key, undefined]);
        }
        origins.set(okey, undefined);
      }
      this.#snapshot = undefined;
    }
    for (const [okey, o] of origins) ops.push(o ? store.put(store.origin, okey, o) : store.del(store.origin, okey));
    // The cursor in the same batch as what it covers: a crash leaves both or neither.
    const cursor = snapshot ? (done ? to : parent.downApplied) : Math.max(parent.downApplied, to);
    if (!snapshot || done) ops.push(store.put(store.parent, 'link', { ...parent, downApplied: cursor }));
    await store.write(ops);
    for (const [okey, o] of origins) {
      if (o) this.origins.set(okey, o);
      else this.origins.delete(okey);
    }
    for (const [sub, key, value] of dispatches) {
      try {
        this.deps.dispatch(sub, key, value);
      } catch (err) {
        this.deps.log.error({ err, sublevel: sub, key }, 'a module could not take a replicated record');
      }
    }
    for (const r of runs) await this.deps.onRun(r);
    return cursor;
  }

  /**
   * The items of a page that exist here without an origin mark (this core's own, about to
   * be replaced by the parent's): one read per sublevel for the whole page (`getMany`),
   * not one per op.
   */
  async #ownItems(entries: Entry[]): Promise<Set<string>> {
    const bySub = new Map<string, Set<string>>();
    for (const e of entries) {
      for (const op of e.o) {
        if (op.v === undefined) continue;
        const split = splitRootKey(op.k);
        if (!split || !DOWN_SET.has(split[0]) || this.origins.has(`${split[0]}!${split[1]}`)) continue;
        let keys = bySub.get(split[0]);
        if (!keys) bySub.set(split[0], (keys = new Set()));
        keys.add(split[1]);
      }
    }
    const out = new Set<string>();
    for (const [sub, keys] of bySub) {
      const list = [...keys];
      const values = await this.deps.store.raw(sub).getMany(list);
      for (const [i, v] of values.entries()) if (v !== undefined) out.add(`${sub}!${list[i]!}`);
    }
    return out;
  }

  /** A new link: a complete copy cut short on the last one starts over. */
  reset(): void {
    this.#snapshot = undefined;
  }

  /** Forgets the marks of `core` (this core left it): its items become this core's own. */
  async forget(core: string): Promise<void> {
    const { store } = this.deps;
    const ops: BatchOp[] = [];
    for (const [okey, o] of this.origins) if (o.core === core) ops.push(store.del(store.origin, okey));
    await store.write(ops);
    for (const [okey, o] of [...this.origins]) if (o.core === core) this.origins.delete(okey);
  }

  /**
   * A package of the parent: once ready there, created here with the same manifest (so the
   * same id), its missing content fetched from the parent and checked by the upload, and
   * enabled or disabled as the parent has it (staging to this core's package servers).
   */
  async #package(parent: ParentRecord, id: string, rec: PackageRecord | undefined): Promise<void> {
    const svc = this.deps.packages();
    if (!svc) return;
    if (!rec) {
      if (svc.store.packages.has(id)) await svc.delete(id).catch((err: unknown) => (isOutpostError(err) ? undefined : Promise.reject(err)));
      return;
    }
    if (rec.state !== 'ready') return;
    let { pkg } = await svc.create({ name: rec.name, version: rec.version, files: rec.files });
    for (const f of pkg.files) {
      if (svc.content.has(f.sha256)) continue;
      const body = await this.deps.fetchContent(parent, f.sha256);
      const r = await svc.upload(pkg, f.path, 0, body, f.size);
      if (!r.complete) throw new Error(`package ${rec.name}@${rec.version}: ${f.path} arrived incomplete from the parent`);
    }
    pkg = svc.store.packages.get(pkg.id) ?? pkg;
    if (rec.enabled && !pkg.enabled) await svc.enable(pkg.id, { fromParent: true });
    else if (!rec.enabled && pkg.enabled) await svc.disable(pkg.id);
  }
}
