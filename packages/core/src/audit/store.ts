import { CoreEvents } from '../events.js';
import { DURABLE, sublevel, serialRunner, type BatchOp, type Database, type Sublevel } from '@outpost/common';
import { entryHash, verifyChain, type ChainPoint, type VerifyResult } from './chain.js';
import { GENESIS, type AuditDraft, type AuditEntry } from './entry.js';
import { isConflict } from '../store-backend.js';

/** Keys are zero-padded so level's byte order is seq order. */
export const seqKey = (seq: number): string => String(seq).padStart(16, '0');

interface Pending {
  draft: AuditDraft;
  resolve: (e: AuditEntry) => void;
  reject: (err: unknown) => void;
}

export interface AuditQuery {
  /** Only entries at or after / before this time (ms). */
  since?: number;
  until?: number;
  admin?: string;
  /** A prefix of the action (`sites.` or `sites.create`). */
  action?: string;
  result?: string;
  /** Newest first, starting below this seq. */
  before?: number;
  limit: number;
  /** Entries looked at before the page is answered as it is, with `next`. */
  scanLimit?: number;
}

/**
 * The audit log in level: sublevel `audit` (zero-padded seq → entry) and `audit-meta`
 * (`head`: the newest entry's seq and hash; `anchor`: the last pruned one's). Appends
 * go through one writer: the entries waiting when it runs are chained and written with
 * the head in ONE batch with `{ sync: true }`; each caller's promise resolves once its
 * entry is on disk. Pruning and verifying take turns (one runs at a time).
 */
export class AuditStore {
  /** Pruning and verifying take turns through this. */
  readonly #turn = serialRunner();
  readonly #entries: Sublevel<AuditEntry>;
  readonly #meta: Sublevel<ChainPoint>;
  #head: ChainPoint = { seq: 0, hash: GENESIS };
  #anchor: ChainPoint = { seq: 0, hash: GENESIS };
  #queue: Pending[] = [];
  #writing: Promise<void> | undefined;
  /** Appends retried because another core had moved the head (several cores). */
  rechained = 0;

  /** Each committed entry goes out as `audit.appended` (`local`: this core's, exported here; else another core's, for live streams). */
  constructor(
    readonly db: Database,
    readonly events: CoreEvents = new CoreEvents(),
  ) {
    this.#entries = sublevel(db, 'audit');
    this.#meta = sublevel(db, 'audit-meta');
  }

  get head(): ChainPoint {
    return this.#head;
  }

  get anchor(): ChainPoint {
    return this.#anchor;
  }

  /** Entries held (head − anchor). */
  get size(): number {
    return this.#head.seq - this.#anchor.seq;
  }

  async load(): Promise<void> {
    this.#head = (await this.#meta.get('head')) ?? { seq: 0, hash: GENESIS };
    this.#anchor = (await this.#meta.get('anchor')) ?? { seq: 0, hash: GENESIS };
  }

  /**
   * Another core appended (its head moved; the chain goes on from it) or pruned (anchor).
   * With several cores the chain stays one: an append is written with the head it chained
   * from, and refused when another core moved the head meanwhile (then re-chained).
   */
  remote(sub: 'audit' | 'audit-meta', key: string, value: unknown): void {
    if (sub === 'audit') {
      if (value) this.events.emit('audit.appended', { entry: value as AuditEntry, local: false });
      return;
    }
    const point = value as ChainPoint | undefined;
    if (!point) return;
    if (key === 'head' && point.seq >= this.#head.seq) this.#head = point;
    if (key === 'anchor' && point.seq >= this.#anchor.seq) this.#anchor = point;
  }

  /** Appends an entry; resolves with it (seq, prev, hash) once it is committed. */
  append(draft: AuditDraft): Promise<AuditEntry> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ draft, resolve, reject });
      this.#writing ??= this.#drain();
    });
  }

  async #drain(): Promise<void> {
    let rechains = 0;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, 500);
        let head = this.#head;
        const entries: AuditEntry[] = [];
        const waiting: Pending[] = [];
        for (const p of batch) {
          const e = { seq: head.seq + 1, ...p.draft, prev: head.hash, hash: '' };
          const hash = entryHash(e);
          if (hash === undefined) {
            p.reject(new Error('an audit entry is not plain JSON'));
            continue;
          }
          e.hash = hash;
          entries.push(e);
          waiting.push(p);
          head = { seq: e.seq, hash };
        }
        if (entries.length === 0) continue;
        const ops: BatchOp[] = entries.map((e) => ({ type: 'put', sublevel: this.#entries, key: seqKey(e.seq), value: e }));
        ops.push({ type: 'put', sublevel: this.#meta, key: 'head', value: head });
        try {
          await this.db.batch(ops, DURABLE);
        } catch (err) {
          // Another core moved the head: this core has the new one now; chain the same drafts after it.
          if (isConflict(err) && rechains++ < 20) {
            this.rechained++;
            this.#queue.unshift(...waiting);
            continue;
          }
          for (const p of waiting) p.reject(err);
          continue;
        }
        this.#head = head;
        waiting.forEach((p, i) => p.resolve(entries[i]!));
        for (const e of entries) {
          try {
            this.events.emit('audit.appended', { entry: e, local: true });
          } catch {
            // Export and live streams count their own failures; the entry is committed.
          }
        }
      }
    } finally {
      this.#writing = undefined;
      if (this.#queue.length > 0) this.#writing = this.#drain();
    }
  }

  /** Waits for appends in flight. */
  async settled(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  /** Checks the chain from the retention anchor to the head (see {@link verifyChain}). */
  verify(): Promise<VerifyResult> {
    return this.#turn(async () => {
      const anchor = this.#anchor;
      const head = this.#head;
      const it = this.#entries.iterator({ gt: seqKey(anchor.seq), lte: seqKey(head.seq) });
      try {
        return await verifyChain(keyed(it), anchor, head);
      } finally {
        await it.close();
      }
    });
  }

  /**
   * Removes the oldest entries: those before `olderThan` (ms) and those beyond the
   * newest `maxEntries`, moving the anchor to the last one removed in the same batch
   * (1000 entries a batch). Returns how many went.
   */
  prune(olderThan: number, maxEntries: number): Promise<number> {
    return this.#turn(async () => {
      let removed = 0;
      for (;;) {
        const keepFrom = this.#head.seq - maxEntries; // entries with seq <= keepFrom go by count
        const ops: BatchOp[] = [];
        let last: AuditEntry | undefined;
        for await (const [, e] of this.#entries.iterator({ gt: seqKey(this.#anchor.seq), limit: 1000 })) {
          if (e.seq > keepFrom && Date.parse(e.at) >= olderThan) break;
          ops.push({ type: 'del', sublevel: this.#entries, key: seqKey(e.seq) });
          last = e;
        }
        if (!last) return removed;
        const anchor = { seq: last.seq, hash: last.hash };
        ops.push({ type: 'put', sublevel: this.#meta, key: 'anchor', value: anchor });
        await this.db.batch(ops, DURABLE);
        this.#anchor = anchor;
        removed += ops.length - 1;
      }
    });
  }

  /** Entries newest first, filtered, one page; `next` is the `before` of the next page. */
  async query(q: AuditQuery): Promise<{ items: AuditEntry[]; next?: number }> {
    const items: AuditEntry[] = [];
    const upper = q.before === undefined ? this.#head.seq : Math.min(q.before - 1, this.#head.seq);
    const scanLimit = q.scanLimit ?? 50_000;
    let scanned = 0;
    let lastSeq: number | undefined;
    for await (const [, e] of this.#entries.iterator({ reverse: true, lte: seqKey(upper), gt: seqKey(this.#anchor.seq) })) {
      const at = Date.parse(e.at);
      if (q.since !== undefined && at < q.since) return { items };
      lastSeq = e.seq;
      scanned++;
      if (matches(e, q, at)) {
        items.push(e);
        if (items.length >= q.limit) return e.seq - 1 > this.#anchor.seq ? { items, next: e.seq } : { items };
      }
      if (scanned >= scanLimit) return lastSeq - 1 > this.#anchor.seq ? { items, next: lastSeq } : { items };
    }
    return { items };
  }

  /** One entry by seq, or undefined. */
  get(seq: number): Promise<AuditEntry | undefined> {
    return this.#entries.get(seqKey(seq));
  }
}

function matches(e: AuditEntry, q: AuditQuery, at: number): boolean {
  if (q.until !== undefined && at > q.until) return false;
  if (q.admin !== undefined && e.actor.admin !== q.admin) return false;
  if (q.action !== undefined && !e.action.startsWith(q.action)) return false;
  if (q.result !== undefined && e.outcome.result !== q.result) return false;
  return true;
}

async function* keyed(it: AsyncIterable<[string, AuditEntry]>): AsyncGenerator<[number, AuditEntry]> {
  for await (const [k, v] of it) yield [Number(k), v];
}
