import type { Logger } from '@outpost/common';
import type { JournalEvent, PgLevel } from '@outpost/pg-level';
import { AppendListeners, fillGaps, type ChangeFeed, type JournalEntry } from './journal.js';

/**
 * The change feed of a shared PostgreSQL table: its journal (`<table>_journal`, written in
 * each write's transaction by every core on the table). The head is the last seq known
 * committed: this core's own commits and what its journal reader has read (journal order is
 * commit order, so every seq before one of them is committed or was rolled back). Seqs a
 * rolled-back transaction took read as entries with no ops.
 */
export function postgresFeed(db: PgLevel, log?: Logger): ChangeFeed {
  // After open: the journal's last seq.
  let head = db.sharing.lastSeq;
  const listeners = new AppendListeners((err) => log?.error({ err }, 'a journal listener failed'));
  db.on('journal', (e: JournalEvent) => {
    if (e.seq <= head) return;
    head = e.seq;
    listeners.fire(head);
  });
  const table = `${db.table}_journal`;
  return {
    head: () => head,
    async oldest() {
      const rows = await db.query<{ v: string | null }>(`SELECT min(seq) AS v FROM ${table}`);
      const v = rows[0]?.v;
      return v === null || v === undefined ? head + 1 : Number(v);
    },
    async read(after, limit) {
      const to = head;
      if (after >= to || limit <= 0) return [];
      const rows = await db.query<{ seq: string; at: number; keys: Buffer[]; vals: Array<Buffer | null>; oldest: string }>(
        `SELECT seq, (extract(epoch FROM at) * 1000)::float8 AS at, keys, vals, (SELECT min(seq) FROM ${table}) AS oldest FROM ${table} WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`,
        [after, to, Math.floor(limit)],
      );
      if (rows.length === 0) return [];
      const entries: JournalEntry[] = rows.map((r) => ({
        seq: Number(r.seq),
        at: Math.round(r.at),
        ops: r.keys.map((k, i) => ({ key: k.toString('utf8'), value: r.vals[i]?.toString('utf8') })),
      }));
      // Seqs missing after the cursor were rolled back; before the oldest entry, pruned (not filled: the reader must resync).
      const from = after + 1 >= Number(rows[0]!.oldest) ? after + 1 : entries[0]!.seq;
      return fillGaps(entries, from, limit);
    },
    onAppend: (fn) => listeners.add(fn),
  };
}
