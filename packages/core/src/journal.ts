/**
 * The store's change journal, read as one feed whatever the backend (issue #17, "Change
 * feed, not polling"): every committed write is an entry, written in the same atomic batch
 * (level) or transaction (PostgreSQL) as the change itself, so an entry exists iff its change
 * does. Readers (replication, the audit log, the console's live view) keep a cursor (the last
 * seq they handled) and read what came after it; `onAppend` wakes them.
 *
 * Seqs are gapless as read: every seq from `oldest()` to `head()` has an entry (a write that
 * failed, or a PostgreSQL sequence number a rolled-back transaction took, reads as an entry
 * with no ops). On level, `!contacts!` and `!task-output!` (noisy, local) are not journaled;
 * on PostgreSQL every write is (the table's journal is shared by the cores).
 */

/** One committed write: every op of one batch/put/del, in order. key: the root key `!sublevel!key` as text; value: the stored JSON text, undefined = deleted. */
export interface JournalEntry {
  seq: number;
  at: number;
  ops: Array<{ key: string; value: string | undefined }>;
}

export interface ChangeFeed {
  /** Highest seq such that it and every seq before it are committed and readable (read() never returns more). */
  head(): number;
  /** The oldest seq still kept (entries before it were pruned: a reader whose cursor < oldest-1 must resync). 1 when nothing was pruned. */
  oldest(): Promise<number>;
  /** Entries with seq > after, ascending, at most `limit`, none above head(). */
  read(after: number, limit: number): Promise<JournalEntry[]>;
  /** fn runs (synchronously, after commit) each time head() moves: this core's writes and, on PostgreSQL, other cores'. Returns an unsubscribe. */
  onAppend(fn: (head: number) => void): () => void;
}

/**
 * Whether the feed's head reaches `seq` within `ms` (at once when it has). A reader's cursor
 * above the head is a restored backup of one side or, on PostgreSQL, a head this core has not
 * heard of yet: the wait tells the two apart.
 */
export function headReaches(feed: ChangeFeed, seq: number, ms: number): Promise<boolean> {
  if (feed.head() >= seq) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      off();
      resolve(ok);
    };
    const off = feed.onAppend((head) => {
      if (head >= seq) done(true);
    });
    const timer = setTimeout(() => done(feed.head() >= seq), ms);
    timer.unref();
  });
}

/** The listeners of a feed's head, each called in turn; one that throws is reported and the rest still run. */
export class AppendListeners {
  readonly #fns = new Set<(head: number) => void>();

  constructor(private readonly onError: (err: unknown) => void) {}

  add(fn: (head: number) => void): () => void {
    // A wrapper per subscription: the same function subscribed twice is called twice and unsubscribed once each.
    const one = (head: number): void => fn(head);
    this.#fns.add(one);
    return () => void this.#fns.delete(one);
  }

  fire(head: number): void {
    for (const fn of this.#fns) {
      try {
        fn(head);
      } catch (err) {
        this.onError(err);
      }
    }
  }
}

/**
 * Entries for the seqs a read skipped (no entry: a failed write's or a rolled-back
 * transaction's number), so a reader sees every seq in (from - 1, entries' last]: `from` is
 * the first seq the read covers.
 */
export function fillGaps(entries: JournalEntry[], from: number, limit: number): JournalEntry[] {
  if (entries.length === 0 || (entries[0]!.seq === from && entries[entries.length - 1]!.seq === from + entries.length - 1)) return entries;
  const out: JournalEntry[] = [];
  let next = from;
  for (const e of entries) {
    for (; next < e.seq && out.length < limit; next++) out.push({ seq: next, at: e.at, ops: [] });
    if (out.length >= limit) break;
    out.push(e);
    next = e.seq + 1;
  }
  return out;
}
