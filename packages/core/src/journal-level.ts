import { OutpostError, type Database, type Logger } from '@outpost/common';
import { CoreErrors } from './errors.js';
import { AppendListeners, type ChangeFeed, type JournalEntry } from './journal.js';
import { decodeEntry, encodeEntry, type StoredEntry } from './journal-entry.js';

/** A key or value as abstract-level hands it to the private API: text (utf8 format) or bytes. */
type Bytes = string | Uint8Array;
interface WriteOp {
  type: 'put' | 'del';
  key: Bytes;
  value?: Bytes;
  keyEncoding?: string;
  valueEncoding?: string;
}
interface RangeOptions {
  gt?: Bytes;
  gte?: Bytes;
  lt?: Bytes;
  lte?: Bytes;
  limit: number;
  reverse: boolean;
  keyEncoding: string;
}
/** The private API of an abstract-level database (what its public methods call with encoded, prefixed keys). */
interface LevelInternals {
  _put(key: Bytes, value: Bytes, options: object): Promise<void>;
  _del(key: Bytes, options: object): Promise<void>;
  _batch(ops: WriteOp[], options: object): Promise<void>;
  _clear(options: RangeOptions): Promise<void>;
  _chainedBatch(): unknown;
}


/** The journal's keys: `!journal!<seq as 16 hex>`. */
export const JOURNAL_PREFIX = '!journal!';
const PREFIX = JOURNAL_PREFIX;
/** Not journaled: the journal itself and local, noisy data (contacts, task outputs). */
const SKIPPED = [PREFIX, '!contacts!', '!task-output!'];
const SKIPPED_BYTES = SKIPPED.map((p) => Buffer.from(p));
/** Keys deleted per journaled batch when a range is cleared. */
const CLEAR_PAGE = 1000;
/** Memory for the newest entries (characters of their keys and values). */
const TAIL_BYTES = 64 * 1024 * 1024;
/** What an entry counts against TAIL_BYTES. */
function entrySize(e: JournalEntry): number {
  let n = 64;
  for (const op of e.ops) n += op.key.length + (op.value?.length ?? 0);
  return n;
}

/** Whether a write to `key` is journaled: called for every key written, so a prefix compare. */
function journaled(key: Bytes): boolean {
  if (typeof key === 'string') return !SKIPPED.some((p) => key.startsWith(p));
  return !SKIPPED_BYTES.some((p) => key.length >= p.length && Buffer.compare(p, key.subarray(0, p.length)) === 0);
}

const text = (b: Bytes): string => (typeof b === 'string' ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'));
/** A seq as its key within the journal sublevel (16 hex digits: key order is seq order). */
const hex = (seq: number): string => seq.toString(16).padStart(16, '0');
const keyOf = (seq: number): string => PREFIX + hex(seq);
const seqOf = (key: string): number => parseInt(key.slice(-16), 16);

export interface LevelJournalOptions {
  /** Entries older than this are pruned (at open and every `pruneEveryMs`); the head's entry is always kept. */
  retentionMs: number;
  /** @default 60000 */
  pruneEveryMs?: number;
  /** @default Date.now */
  now?: () => number;
  log?: Logger;
}

/**
 * The change journal of a level database: the root instance's private write methods are
 * wrapped so each batch, put or del (sublevels reach them with their full keys) gets the next
 * seq and writes its entry `!journal!<seq as 16 hex>` in the same atomic batch; a clear is
 * journaled as the deletes of the keys it finds. Batches in flight may complete out of order:
 * the head only moves over a run of completed seqs, and each entry records the head at its
 * write, so after a crash the seqs that may be missing (in flight then) are known and get
 * empty entries at open: no gaps, and head = the last entry.
 */
export class LevelJournal implements ChangeFeed {
  readonly #db: Database;
  readonly #raw: LevelInternals;
  /** The original private methods. */
  readonly #orig: Pick<LevelInternals, '_put' | '_del' | '_batch' | '_clear' | '_chainedBatch'>;
  readonly #options: LevelJournalOptions;
  readonly #now: () => number;
  readonly #entries;
  readonly #listeners: AppendListeners;
  #head = 0;
  #next = 1;
  /** Seqs above the head whose write completed (or whose empty entry replaced a failed write). */
  readonly #done = new Set<number>();
  /**
   * The newest committed entries as written (insertion order ~ seq order), up to
   * {@link TAIL_BYTES}: followers near the head (the hierarchy's pumps, its results follower)
   * read them from here, not from level. Reading and decoding the same entries once per
   * follower from level was a tenth of a child core's CPU during a run of 25,000 agents.
   */
  readonly #tail = new Map<number, JournalEntry>();
  #tailBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(db: Database, options: LevelJournalOptions) {
    this.#db = db;
    this.#raw = db as unknown as LevelInternals;
    const raw = this.#raw;
    this.#orig = { _put: raw._put.bind(db), _del: raw._del.bind(db), _batch: raw._batch.bind(db), _clear: raw._clear.bind(db), _chainedBatch: raw._chainedBatch.bind(db) };
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#entries = db.sublevel<string, string>('journal', { valueEncoding: 'utf8' });
    this.#listeners = new AppendListeners((err) => options.log?.error({ err }, 'a journal listener failed'));
  }

  /** Loads the seq counter (filling what a crash left missing), prunes, and journals every write from now on. */
  static async open(db: Database, options: LevelJournalOptions): Promise<LevelJournal> {
    const j = new LevelJournal(db, options);
    await j.#load();
    j.#wrap();
    await j.prune();
    j.#timer = setInterval(() => void j.prune().catch((err: unknown) => options.log?.warn({ err }, 'pruning the journal failed')), options.pruneEveryMs ?? 60_000);
    j.#timer.unref();
    db.once('closing', () => j.close());
    return j;
  }

  async #load(): Promise<void> {
    const last = await this.#entries.iterator({ reverse: true, limit: 1 }).all();
    if (last.length === 0) return;
    const [key, text] = last[0]!;
    const seq = seqOf(key);
    const stored = this.#decode(key, text);
    // Seqs between the head recorded in the last entry and it were in flight: any missing never happened.
    const present = new Set((await this.#entries.keys({ gt: hex(stored.h), lt: key }).all()).map(seqOf));
    const fill: WriteOp[] = [];
    for (let s = stored.h + 1; s < seq; s++) {
      if (!present.has(s)) fill.push(this.#emptyOp(s, stored.at, stored.h));
    }
    if (fill.length > 0) {
      await this.#orig._batch(fill, {});
      this.#options.log?.warn({ filled: fill.length, head: seq }, 'the journal had writes in flight when the store was last closed: empty entries written for those that never happened');
    }
    this.#head = seq;
    this.#next = seq + 1;
  }

  #emptyOp(seq: number, at: number, h: number): WriteOp {
    return { type: 'put', key: keyOf(seq), value: encodeEntry({ at, h, ops: [] }), keyEncoding: 'utf8', valueEncoding: 'utf8' };
  }

  #wrap(): void {
    const raw = this.#raw;
    raw._batch = (ops, options) => this.#batch(ops, options);
    raw._put = (key, value, options) => (journaled(key) ? this.#batch([{ type: 'put', key, value, ...formats(options) }], options) : this.#orig._put(key, value, options));
    raw._del = (key, options) => (journaled(key) ? this.#batch([{ type: 'del', key, ...formats(options) }], options) : this.#orig._del(key, options));
    raw._clear = (options) => this.#clear(options);
    // classic-level's native chained batch bypasses _batch: abstract-level's default one writes through it.
    raw._chainedBatch = defaultChainedBatch(this.#db);
  }

  async #batch(ops: WriteOp[], options: object): Promise<void> {
    let entry: StoredEntry | undefined;
    for (const op of ops) {
      if (!journaled(op.key)) continue;
      entry ??= { at: this.#now(), h: this.#head, ops: [] };
      entry.ops.push({ key: text(op.key), value: op.type === 'put' && op.value !== undefined ? text(op.value) : undefined });
    }
    if (!entry) return this.#orig._batch(ops, options);
    const seq = this.#next++;
    try {
      await this.#orig._batch([...ops, { type: 'put', key: keyOf(seq), value: encodeEntry(entry), keyEncoding: 'utf8', valueEncoding: 'utf8' }], options);
    } catch (err) {
      // Nothing of it was written: its seq gets an empty entry, so the head can pass it.
      this.#void(seq, entry.at, entry.h);
      throw err;
    }
    this.#remember({ seq, at: entry.at, ops: entry.ops });
    this.#complete(seq);
  }

  /** Drops the tail's entries up to `seq` (pruned from level: a read answers what the journal keeps). */
  #forget(seq: number): void {
    for (const [s, e] of this.#tail) {
      if (s > seq) continue;
      this.#tail.delete(s);
      this.#tailBytes -= entrySize(e);
    }
  }

  /** Keeps a committed entry in the tail; the oldest go when it holds more than TAIL_BYTES. An entry larger than a quarter of it is not kept. */
  #remember(e: JournalEntry): void {
    const size = entrySize(e);
    if (size > TAIL_BYTES / 4) return;
    this.#tail.set(e.seq, e);
    this.#tailBytes += size;
    for (const [seq, old] of this.#tail) {
      if (this.#tailBytes <= TAIL_BYTES) break;
      this.#tail.delete(seq);
      this.#tailBytes -= entrySize(old);
    }
  }

  /** Writes an empty entry for a failed write's seq, retrying while the store is open. */
  #void(seq: number, at: number, h: number): void {
    this.#orig._batch([this.#emptyOp(seq, at, h)], {}).then(
      () => {
        this.#remember({ seq, at, ops: [] });
        this.#complete(seq);
      },
      (err: unknown) => {
        if (this.#closed) return;
        this.#options.log?.error({ err, seq }, 'cannot write the empty journal entry of a failed write: the head waits for it');
        setTimeout(() => this.#void(seq, at, h), 1_000).unref();
      },
    );
  }

  #complete(seq: number): void {
    if (seq !== this.#head + 1) {
      this.#done.add(seq);
      return;
    }
    this.#head = seq;
    while (this.#done.delete(this.#head + 1)) this.#head++;
    this.#listeners.fire(this.#head);
  }

  /** A range cleared: the keys it holds are deleted in journaled batches (a clear was never atomic). */
  async #clear(options: RangeOptions): Promise<void> {
    const { gt, gte, lt, lte, reverse, keyEncoding } = options;
    let left = options.limit < 0 ? Infinity : options.limit;
    let after: Bytes | undefined;
    while (left > 0) {
      const range = after === undefined ? { gt, gte, lt, lte } : reverse ? { gt, gte, lt: after } : { gt: after, lt, lte };
      const keys = await this.#db.keys({ ...defined(range), reverse, limit: Math.min(CLEAR_PAGE, left), keyEncoding } as object).all();
      if (keys.length === 0) return;
      await this.#batch(keys.map((key) => ({ type: 'del', key: key as Bytes, keyEncoding })), {});
      left -= keys.length;
      after = keys[keys.length - 1] as Bytes;
    }
  }

  head(): number {
    return this.#head;
  }

  /** A stored entry; one that is not (the store was damaged) fails the read: a reader must not skip a change. */
  #decode(key: string, text: string): StoredEntry {
    const e = decodeEntry(text);
    if (!e) throw new OutpostError(CoreErrors.JOURNAL_CORRUPT, `the change journal's entry ${seqOf(key)} cannot be read: the store is damaged`, { status: 500, details: { seq: seqOf(key) } });
    return e;
  }

  async oldest(): Promise<number> {
    const first = await this.#entries.keys({ limit: 1 }).all();
    return first.length > 0 ? seqOf(first[0]!) : this.#head + 1;
  }

  async read(after: number, limit: number): Promise<JournalEntry[]> {
    const head = this.#head;
    if (after >= head || limit <= 0) return [];
    // From the tail when it holds every seq asked for (entries are never changed once written: shared, read-only).
    const end = Math.min(head, after + limit);
    if (this.#tail.has(after + 1) && this.#tail.has(end)) {
      const out: JournalEntry[] = [];
      for (let seq = after + 1; seq <= end; seq++) {
        const e = this.#tail.get(seq);
        if (!e) break;
        out.push(e);
      }
      if (out.length === end - after) return out;
    }
    const rows = await this.#entries.iterator({ gt: hex(after), lte: hex(head), limit }).all();
    return rows.map(([key, t]) => {
      const { at, ops } = this.#decode(key, t);
      return { seq: seqOf(key), at, ops };
    });
  }

  onAppend(fn: (head: number) => void): () => void {
    return this.#listeners.add(fn);
  }

  /** Deletes the entries older than the retention, except the head's (it keeps the seq across a restart). */
  async prune(): Promise<number> {
    const cutoff = this.#now() - this.#options.retentionMs;
    let pruned = 0;
    for (;;) {
      const rows = await this.#entries.iterator({ lt: hex(this.#head), limit: CLEAR_PAGE }).all();
      const old = rows.filter(([key, t]) => this.#decode(key, t).at < cutoff).map(([key]) => key);
      if (old.length > 0) await this.#orig._batch(old.map((k) => ({ type: 'del', key: PREFIX + k, keyEncoding: 'utf8' })), {});
      if (old.length > 0) this.#forget(seqOf(old[old.length - 1]!));
      pruned += old.length;
      if (old.length < CLEAR_PAGE) return pruned;
    }
  }

  /** Stops the pruning timer (the database closing does it). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }
}

/** The encoding formats of a put/del's options, for the op it becomes. */
function formats(options: object): { keyEncoding?: string; valueEncoding?: string } {
  const o = options as { keyEncoding?: string; valueEncoding?: string };
  return { keyEncoding: o.keyEncoding, valueEncoding: o.valueEncoding };
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** abstract-level's own `_chainedBatch` (the deepest in the prototype chain), bound to `db`. */
function defaultChainedBatch(db: Database): () => unknown {
  let base: LevelInternals['_chainedBatch'] | undefined;
  for (let p: object | null = Object.getPrototypeOf(db) as object | null; p; p = Object.getPrototypeOf(p) as object | null) {
    if (Object.hasOwn(p, '_chainedBatch')) base = (p as LevelInternals)._chainedBatch;
  }
  if (!base) throw new Error('not an abstract-level database');
  return base.bind(db);
}
