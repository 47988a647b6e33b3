/**
 * Per-IP handshake admission: a token bucket per client address (`rate` per second,
 * `burst` deep). Over budget, a client first gets a bounded number of "answer with a
 * Retry-After hint" admissions (so a well-behaved agent learns when to come back), then
 * plain refusals that cost no TLS work. The table is bounded: beyond `maxEntries` the
 * oldest half is dropped.
 */
export class Admission {
  readonly #buckets = new Map<string, { tokens: number; at: number; hints: number }>();
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly maxEntries = 200_000,
  ) {}

  /** `admit`: go on; `hint`: handshake, then answer 429 with Retry-After; `drop`: close at once. */
  take(ip: string, now: number): 'admit' | 'hint' | 'drop' {
    let b = this.#buckets.get(ip);
    if (!b) {
      if (this.#buckets.size >= this.maxEntries) this.#trim();
      b = { tokens: this.burst, at: now, hints: 0 };
      this.#buckets.set(ip, b);
    }
    const refill = ((now - b.at) / 1000) * this.rate;
    if (refill > 0) {
      b.tokens = Math.min(this.burst, b.tokens + refill);
      b.at = now;
      if (b.tokens >= 1) b.hints = 0;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 'admit';
    }
    if (b.hints < Math.max(1, Math.ceil(this.rate))) {
      b.hints++;
      return 'hint';
    }
    return 'drop';
  }

  #trim(): void {
    let n = Math.floor(this.#buckets.size / 2);
    for (const k of this.#buckets.keys()) {
      if (n-- <= 0) break;
      this.#buckets.delete(k);
    }
  }

  get size(): number {
    return this.#buckets.size;
  }
}
