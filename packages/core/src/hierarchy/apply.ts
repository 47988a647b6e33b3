import { isOutpostError, type BatchOp, type Logger } from '@outpost/common';
import { stageable, type PackageRecord } from '../packages/model.js';
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
  /** A package from upstream was applied: its content is looked after outside the page (upstream.ts). */
  packageApplied(): void;
  /** A hierarchy run arrived (or changed). */
  onRun(run: HierRunRecord): Promise<void>;
}

/**
 * Applies what a parent sends down on the child: each record is written where its module
 * keeps it (same sublevel and key), with an origin mark naming the core that owns it and
 * the link's cursor in the same batch; then the module's memory follows (dispatch).
 * Packages go through the package service (the manifest only: the content is staged by this
 * core's package servers from the parent's, see upstream.ts). A child's own
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
        const owner = this.origins.get(okey);
        // A parent's install files (install/stage.ts) are its own, never a child's package; a
        // package the parent never handed down here is not the parent's to delete.
        if (sub === 'packages' && ((value as PackageRecord | undefined)?.source === 'install' || (value === undefined && !owner && !origins.get(okey)))) continue;
        this.#snapshot?.add(okey);
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
   * A package of the parent: once it can be staged there, created here with the same
   * manifest (so the same id) and, when its content is not here, marked as from upstream:
   * enabled or disabled at once as the parent has it, its content fetched by this core's
   * unconstrained package servers from the parent's (or, as a fallback, by this core from the
   * parent's link listener: in the background, never inside the page).
   */
  async #package(parent: ParentRecord, id: string, rec: PackageRecord | undefined): Promise<void> {
    const svc = this.deps.packages();
    if (!svc) return;
    if (!rec) {
      if (svc.store.packages.has(id)) await svc.delete(id).catch((err: unknown) => (isOutpostError(err) ? undefined : Promise.reject(err)));
      return;
    }
    // A parent that is itself a child stages packages from its own parent: it may not hold the content either.
    if (!stageable(rec)) return;
    let { pkg } = await svc.create({ name: rec.name, version: rec.version, files: rec.files });
    if (pkg.state !== 'ready') pkg = (await svc.markUpstream(pkg.id, parent.parentId)) ?? pkg;
    if (rec.enabled && !pkg.enabled) await svc.enable(pkg.id, { fromParent: true });
    else if (!rec.enabled && pkg.enabled) await svc.disable(pkg.id);
    if (pkg.upstream !== undefined) this.deps.packageApplied();
  }
}
