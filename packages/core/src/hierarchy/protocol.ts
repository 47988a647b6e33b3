import { z } from '@outpost/common';

/**
 * The messages of a link (JSON over one WebSocket the child opens to its parent's link
 * listener, mutual TLS). Every message is checked against these schemas: a peer that
 * sends anything else is disconnected with CORE_HIERARCHY_BAD_MESSAGE.
 *
 * Down: the parent sends its journal entries (only ops on DOWN sublevels) after the seq
 * the child says it applied; the child writes them with its new cursor in one batch and
 * acks. Up: the child sends its entries (UP sublevels) after the seq the parent says it
 * applied; the parent writes them with its cursor for that child and acks. A cursor the
 * journal no longer covers is answered with a snapshot of every replicated item.
 *
 * Pages are pipelined: a sender has up to `window` pages in flight, each covering the seqs
 * (`from`, `to`] right after the one before. A receiver takes a page only if `from` is at or
 * below its cursor (no gap: a page lost or refused before it means the link is dropped and
 * the next hello starts again from the cursor as written), skips entries at or below it, and
 * acks each page it wrote.
 */

/** One op: a root key (`!sublevel!key`) and the record's JSON text (absent: deleted). */
export const opSchema = z.strictObject({ k: z.string().min(3).max(2048), v: z.string().max(16 * 1024 * 1024).optional() });
export type Op = z.infer<typeof opSchema>;
const seq = z.number().int().min(0);
export const entrySchema = z.strictObject({ s: seq, o: z.array(opSchema).max(100_000) });
export type Entry = z.infer<typeof entrySchema>;

export const childMessage = z.discriminatedUnion('t', [
  /** First message: the last parent seq this child applied; `full` asks for a snapshot. */
  z.strictObject({ t: z.literal('hello'), down: seq, full: z.boolean().default(false), name: z.string().min(1).max(200) }),
  /** Applied down to `down` (inclusive). */
  z.strictObject({ t: z.literal('ack'), down: seq }),
  /** The child's entries after `from` (absent: not checked) up to `to`; `snapshot`: every up item as of seq `to` (the cursor had fallen behind the journal). */
  z.strictObject({ t: z.literal('up'), entries: z.array(entrySchema).max(10_000), from: seq.optional(), to: seq, snapshot: z.boolean().default(false) }),
  /** Send what is pending now (`hierarchy replicate --now`). */
  z.strictObject({ t: z.literal('now') }),
  /** The child leaves the hierarchy: the parent forgets it. */
  z.strictObject({ t: z.literal('leave') }),
]);
export type ChildMessage = z.infer<typeof childMessage>;

export const parentMessage = z.discriminatedUnion('t', [
  /** Answer to hello: the last child seq the parent applied (up resumes after it). */
  z.strictObject({ t: z.literal('welcome'), parent: z.string().min(1).max(200), up: seq, editable: z.array(z.string().max(100)).max(100).default([]) }),
  /**
   * Entries (DOWN ops only) after `from` up to `to`, which the child acks (`from` absent: not
   * checked); `snapshot`: every down item as of `to` (with `done` on the last part).
   */
  z.strictObject({ t: z.literal('down'), entries: z.array(entrySchema).max(10_000), from: seq.optional(), to: seq, snapshot: z.boolean().default(false), done: z.boolean().default(true) }),
  /** Applied up to `up`. */
  z.strictObject({ t: z.literal('ack'), up: seq }),
  /** An up message was refused (an op the child may not author): the reason, for its status. */
  z.strictObject({ t: z.literal('refused'), reason: z.string().max(2000) }),
]);
export type ParentMessage = z.infer<typeof parentMessage>;

/** Join request (child → parent's link listener, `POST /join`). */
export const joinBody = z.strictObject({
  token: z.string().min(10).max(400),
  id: z.string().regex(/^core_[\w-]{4,60}$/),
  name: z.string().min(1).max(200),
  caPem: z.string().min(100).max(20_000),
  certPem: z.string().min(100).max(20_000),
});

/**
 * A page of journal entries as a link sends it: the ops `keep` selects of each entry, until
 * `maxBytes` of ops (keys and values) are in (at least one entry, however large). `to` is
 * the last entry it covers, included or not (an entry with nothing to send is covered too).
 */
export function page(
  entries: ReadonlyArray<{ seq: number; ops: ReadonlyArray<{ key: string; value: string | undefined }> }>,
  keep: (key: string) => boolean,
  maxBytes: number,
): { entries: Entry[]; to: number } {
  const out: Entry[] = [];
  let bytes = 0;
  let to = entries[0]?.seq ?? 0;
  for (const e of entries) {
    const o: Op[] = [];
    let size = 0;
    for (const op of e.ops) {
      if (!keep(op.key)) continue;
      o.push(op.value === undefined ? { k: op.key } : { k: op.key, v: op.value });
      size += op.key.length + (op.value?.length ?? 0);
    }
    if (bytes > 0 && bytes + size > maxBytes) break;
    bytes += size;
    to = e.seq;
    if (o.length) out.push({ s: e.seq, o });
  }
  return { entries: out, to };
}

/**
 * How long a cursor above this core's journal head (the other side applied more than this
 * core holds) waits for the head before it counts as ahead: a restored backup, not a head
 * this core has yet to hear of (PostgreSQL: other cores' writes arrive a moment later).
 */
export const AHEAD_WAIT_MS = 2_000;
