import { allValues, sublevel, type BatchOp, type Database, type Sublevel } from '@outpost/common';
import type { BootImageRecord, BootRecord, ComputerRecord } from './model.js';

/**
 * The boot module's sublevels: `boot-computers` (id → computer), `boot-images`
 * (name → image) and `boot-boots` (time-ordered id → timeline). Everything is held in
 * memory too (computers and images are few; boots are capped by `keepBoots`).
 */
export class BootStore {
  readonly computers = new Map<string, ComputerRecord>();
  readonly images = new Map<string, BootImageRecord>();
  readonly boots = new Map<string, BootRecord>();
  /** How many of `computers` are `discovered` (bounded by `maxDiscovered`). */
  discovered = 0;
  readonly #computers: Sublevel<ComputerRecord>;
  readonly #images: Sublevel<BootImageRecord>;
  readonly #boots: Sublevel<BootRecord>;

  constructor(readonly db: Database) {
    this.#computers = sublevel(db, 'boot-computers');
    this.#images = sublevel(db, 'boot-images');
    this.#boots = sublevel(db, 'boot-boots');
  }

  async load(): Promise<void> {
    for (const c of await allValues(this.#computers)) {
      this.computers.set(c.id, c);
      if (c.kind === 'discovered') this.discovered++;
    }
    for (const i of await allValues(this.#images)) this.images.set(i.name, i);
    for (const b of await allValues(this.#boots)) this.boots.set(b.id, b);
  }

  putComputer(c: ComputerRecord): BatchOp {
    if (this.computers.get(c.id)?.kind === 'discovered') this.discovered--;
    if (c.kind === 'discovered') this.discovered++;
    this.computers.set(c.id, c);
    return { type: 'put', sublevel: this.#computers, key: c.id, value: c };
  }

  delComputer(id: string): BatchOp {
    if (this.computers.get(id)?.kind === 'discovered') this.discovered--;
    this.computers.delete(id);
    return { type: 'del', sublevel: this.#computers, key: id };
  }

  putImage(i: BootImageRecord): BatchOp {
    this.images.set(i.name, i);
    return { type: 'put', sublevel: this.#images, key: i.name, value: i };
  }

  delImage(name: string): BatchOp {
    this.images.delete(name);
    return { type: 'del', sublevel: this.#images, key: name };
  }

  putBoot(b: BootRecord): BatchOp {
    this.boots.set(b.id, b);
    return { type: 'put', sublevel: this.#boots, key: b.id, value: b };
  }

  delBoot(id: string): BatchOp {
    this.boots.delete(id);
    return { type: 'del', sublevel: this.#boots, key: id };
  }

  async write(ops: BatchOp[]): Promise<void> {
    if (ops.length > 0) await this.db.batch(ops);
  }
}
