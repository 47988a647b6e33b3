import { createHash } from 'node:crypto';
import { canonicalJson } from '@outpost/common';
import type { AuditEntry } from './entry.js';

/** A point in the chain: an entry's seq and hash (the head; the retention anchor). */
export interface ChainPoint {
  seq: number;
  hash: string;
}

/**
 * An entry's hash: sha256 over `prev` followed by the canonical JSON (sorted keys, no
 * whitespace) of the entry without its `hash` member, hex. Undefined when the entry is
 * not plain JSON (it then cannot verify).
 */
export function entryHash(entry: Omit<AuditEntry, 'hash'> & { hash?: string }): string | undefined {
  const { hash: _hash, ...rest } = entry;
  const json = canonicalJson(rest);
  if (json === undefined) return undefined;
  return createHash('sha256').update(String(entry.prev)).update(json).digest('hex');
}

export interface VerifyResult {
  ok: boolean;
  /** Entries checked. */
  entries: number;
  /** The first and last seq checked (absent when the log is empty). */
  first?: number;
  last?: number;
  /** The first entry that breaks the chain, and why. */
  broken?: { seq: number; reason: string };
}

/**
 * Walks entries in seq order from `anchor` (the last pruned entry, or seq 0 and 64
 * zeros) to `head`, and names the FIRST broken one: a missing seq (a gap, or entries
 * missing at the end), a `prev` that is not the hash of the entry before, or a stored
 * hash that is not the entry's hash.
 */
export async function verifyChain(entries: AsyncIterable<[number, AuditEntry]> | Iterable<[number, AuditEntry]>, anchor: ChainPoint, head: ChainPoint): Promise<VerifyResult> {
  let expected = anchor.seq + 1;
  let prev = anchor.hash;
  let count = 0;
  let first: number | undefined;
  let last: number | undefined;
  const result = (broken?: { seq: number; reason: string }): VerifyResult => ({
    ok: broken === undefined,
    entries: count,
    ...(first === undefined ? {} : { first, last }),
    ...(broken ? { broken } : {}),
  });
  for await (const [key, entry] of entries) {
    if (key > head.seq) break;
    if (key !== expected) return result({ seq: expected, reason: key < expected ? `entry ${key} is out of order` : `entry ${expected} is missing (the next one is ${key})` });
    if (entry === null || typeof entry !== 'object' || entry.seq !== key) return result({ seq: key, reason: `the entry stored under seq ${key} says seq ${String((entry as { seq?: unknown } | null)?.seq)}` });
    if (entry.prev !== prev) return result({ seq: key, reason: 'prev mismatch: it does not name the hash of the entry before' });
    const hash = entryHash(entry);
    if (hash === undefined || hash !== entry.hash) return result({ seq: key, reason: 'hash mismatch: the entry was changed after it was written' });
    count++;
    first ??= key;
    last = key;
    prev = entry.hash;
    expected = key + 1;
  }
  if (expected <= head.seq) return result({ seq: expected, reason: `entry ${expected} is missing (the log's head is seq ${head.seq})` });
  if (head.seq > anchor.seq && prev !== head.hash) return result({ seq: head.seq, reason: 'hash mismatch: the last entry is not the one the head names' });
  return result();
}
