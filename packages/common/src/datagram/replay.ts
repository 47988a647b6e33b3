/**
 * Per-sender `(timestamp, sequence)` stamps, strictly increasing: the sequence counts
 * within a millisecond-timestamp, so stamps keep increasing across a sender's restarts
 * (its clock moved on) without any persisted counter.
 */
export class DatagramStamper {
  #lastTs = 0;
  #seq = 0;
  constructor(private readonly now: () => number = Date.now) {}

  next(): { timestamp: number; seq: number } {
    const ts = Math.max(Math.floor(this.now()), this.#lastTs);
    if (ts === this.#lastTs && this.#seq < 0xffffffff) {
      this.#seq += 1;
    } else if (ts === this.#lastTs) {
      // 2^32 stamps in one millisecond (a stalled clock): borrow the next one.
      this.#lastTs = ts + 1;
      this.#seq = 0;
    } else {
      this.#lastTs = ts;
      this.#seq = 0;
    }
    return { timestamp: this.#lastTs, seq: this.#seq };
  }
}

export type ReplayVerdict = 'ok' | 'stale' | 'future' | 'replay';

export interface ReplayGuardOptions {
  /** Largest accepted clock difference, either way. @default 120_000 */
  windowMs?: number;
  /** Senders remembered; beyond, the oldest entries are pruned. @default 1_000_000 */
  maxSenders?: number;
}

/**
 * Drops replays: a datagram is accepted only if its timestamp is within the window of
 * the receiver's clock and its `(timestamp, seq)` is greater than the last accepted from
 * that sender. Only the last stamp per sender is kept: anything older than the window is
 * rejected by the clock check anyway, so forgetting old senders is safe. A reordered
 * (older) datagram is dropped: tickles and heartbeats are idempotent hints, the next
 * one carries the same meaning.
 */
export class ReplayGuard {
  readonly #last = new Map<string, { ts: number; seq: number }>();
  readonly #windowMs: number;
  readonly #maxSenders: number;

  constructor(options: ReplayGuardOptions = {}) {
    this.#windowMs = options.windowMs ?? 120_000;
    this.#maxSenders = options.maxSenders ?? 1_000_000;
  }

  /** Checks and, when ok, records the stamp. */
  check(sender: string, timestamp: number, seq: number, now = Date.now()): ReplayVerdict {
    if (timestamp < now - this.#windowMs) return 'stale';
    if (timestamp > now + this.#windowMs) return 'future';
    const last = this.#last.get(sender);
    if (last && (timestamp < last.ts || (timestamp === last.ts && seq <= last.seq))) return 'replay';
    if (last) {
      last.ts = timestamp;
      last.seq = seq;
      // Map order is insertion order: move to the back so pruning takes the idle ones.
      this.#last.delete(sender);
      this.#last.set(sender, last);
    } else {
      if (this.#last.size >= this.#maxSenders) this.#prune(now);
      this.#last.set(sender, { ts: timestamp, seq });
    }
    return 'ok';
  }

  get size(): number {
    return this.#last.size;
  }

  #prune(now: number): void {
    for (const [sender, stamp] of this.#last) {
      if (this.#last.size < this.#maxSenders && stamp.ts >= now - this.#windowMs) break;
      this.#last.delete(sender);
    }
  }
}
