import { sublevel, type BatchOp, type Database, type Sublevel } from '@outpost/common';
import type { ChildRecord, HierRunRecord, JoinTokenRecord, OriginRecord, ParentRecord, ResultRecord, Summary } from './model.js';

/** Sublevels replicated from a parent to its children (items the parent owns), in the order a snapshot sends them. */
export const DOWN = ['admin-roles', 'admins', 'task-defs', 'task-jobs', 'packages', 'boot-images', 'hier-runs'] as const;
/** Sublevels replicated from a child to its parent (summaries and results, keyed by the core they describe). */
export const UP = ['hier-up', 'hier-results'] as const;
export type DownSublevel = (typeof DOWN)[number];

/** `!name!key` → [name, key]. */
export function splitRootKey(key: string): [string, string] | undefined {
  if (!key.startsWith('!')) return undefined;
  const i = key.indexOf('!', 1);
  return i < 0 ? undefined : [key.slice(1, i), key.slice(i + 1)];
}

export class HierarchyStore {
  readonly tokens: Sublevel<JoinTokenRecord>;
  readonly children: Sublevel<ChildRecord>;
  readonly parent: Sublevel<ParentRecord>;
  readonly origin: Sublevel<OriginRecord>;
  readonly runs: Sublevel<HierRunRecord>;
  readonly results: Sublevel<ResultRecord>;
  readonly up: Sublevel<Summary>;
  /** Sublevels by name, made once: a sublevel is an object with its own prefix and encodings, not free per op. */
  readonly #raw = new Map<string, Sublevel<unknown>>();

  constructor(readonly db: Database) {
    this.tokens = sublevel(db, 'hier-tokens');
    this.children = sublevel(db, 'hier-children');
    this.parent = sublevel(db, 'hier-parent');
    this.origin = sublevel(db, 'hier-origin');
    this.runs = sublevel(db, 'hier-runs');
    this.results = sublevel(db, 'hier-results');
    this.up = sublevel(db, 'hier-up');
  }

  /** A sublevel of the root database by name (replicated records keep their owner's layout). */
  raw(name: string): Sublevel<unknown> {
    let s = this.#raw.get(name);
    if (!s) {
      s = sublevel(this.db, name);
      this.#raw.set(name, s);
    }
    return s;
  }

  put<V>(s: Sublevel<V>, key: string, value: V): BatchOp {
    return { type: 'put', sublevel: s, key, value } as unknown as BatchOp;
  }

  del<V>(s: Sublevel<V>, key: string): BatchOp {
    return { type: 'del', sublevel: s, key } as unknown as BatchOp;
  }

  write(ops: BatchOp[]): Promise<void> {
    return ops.length === 0 ? Promise.resolve() : this.db.batch(ops);
  }

  async list<V>(s: Sublevel<V>, prefix = ''): Promise<Array<[string, V]>> {
    const out: Array<[string, V]> = [];
    const range = prefix ? { gte: prefix, lt: `${prefix}\xff` } : {};
    for await (const [k, v] of s.iterator(range)) out.push([k, v]);
    return out;
  }
}
