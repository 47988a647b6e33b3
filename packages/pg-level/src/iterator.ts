import { AbstractIterator } from 'abstract-level';
import type { PgLevel } from './pg-level.js';
import { rangeWhere, type RangeOptions } from './range.js';

interface IteratorOptions extends RangeOptions {
  reverse: boolean;
  keys: boolean;
  values: boolean;
  limit: number;
}

type Entry = [Buffer | undefined, Buffer | undefined];

/**
 * Keyset paging: each page is `key > last` (or `<` in reverse) within the range, in key
 * order, at most `pageSize` rows; no cursor or transaction is held between pages, so an
 * iterator never pins a connection. Without implicit snapshots (like the manifest says),
 * a write after the iterator was made may or may not be seen.
 */
export class PgIterator extends AbstractIterator<PgLevel, Buffer, Buffer> {
  readonly #db: PgLevel;
  readonly #o: IteratorOptions;
  #buffer: Entry[] = [];
  #last: Buffer | undefined;
  /** After a seek: the first key to take (inclusive). */
  #from: Buffer | undefined;
  #done = false;
  #taken = 0;

  constructor(db: PgLevel, options: IteratorOptions) {
    super(db, options as never);
    this.#db = db;
    this.#o = options;
  }

  async #fill(want: number): Promise<void> {
    if (this.#done || this.#buffer.length >= want) return;
    const o = this.#o;
    const cmp = o.reverse ? '<' : '>';
    const range = rangeWhere(o, 1);
    const params: Buffer[] = [...range.params];
    let cond = range.sql;
    if (this.#last !== undefined) {
      params.push(this.#last);
      cond += ` AND key ${cmp} $${params.length}`;
    } else if (this.#from !== undefined) {
      params.push(this.#from);
      cond += ` AND key ${cmp}= $${params.length}`;
    }
    const left = o.limit >= 0 ? o.limit - this.#taken - this.#buffer.length : Infinity;
    const size = Math.max(1, Math.min(this.#db.pageSize, Math.max(want, 1), left));
    const cols = o.values ? this.#db.readColumns : 'key';
    const rows = await this.#db.query<{ key: Buffer; value?: Buffer; ver?: string }>(`SELECT ${cols} FROM ${this.#db.table} WHERE ${cond} ORDER BY key ${o.reverse ? 'DESC' : 'ASC'} LIMIT ${size}`, params);
    for (const r of rows) {
      if (r.ver !== undefined) this.#db._seen(r.key, r.ver);
      this.#buffer.push([o.keys ? r.key : undefined, o.values ? r.value : undefined]);
    }
    if (rows.length > 0) this.#last = rows[rows.length - 1]!.key;
    if (rows.length < size) this.#done = true;
  }

  async _next(): Promise<Entry | undefined> {
    await this.#fill(1);
    const e = this.#buffer.shift();
    if (e) this.#taken++;
    return e;
  }

  async _nextv(size: number): Promise<Entry[]> {
    await this.#fill(size);
    const out = this.#buffer.splice(0, size);
    this.#taken += out.length;
    return out;
  }

  async _all(): Promise<Entry[]> {
    const out: Entry[] = [];
    for (;;) {
      const left = this.#o.limit >= 0 ? this.#o.limit - this.#taken : Infinity;
      if (left <= 0) return out;
      const page = await this._nextv(Math.min(this.#db.pageSize, left));
      if (page.length === 0) return out;
      out.push(...page);
    }
  }

  _seek(target: Buffer): void {
    this.#buffer = [];
    this.#last = undefined;
    this.#from = target;
    this.#done = false;
  }
}
