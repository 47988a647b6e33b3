export interface TokenBucketOptions {
  /** Most bytes that pass at once after a pause (default: one second's worth, `rate`). */
  burst?: number;
  /** Milliseconds clock (default `performance.now`), for tests. */
  now?: () => number;
}

/**
 * A token bucket in bytes, shared by everything it paces: at most `rate` bytes/s on
 * average, bursts up to `burst`. `take(n)` always succeeds by going into debt and says how
 * long to pause (ms) before the next bytes, so a sender keeps its rate without ever
 * splitting a write or a packet. `rate` 0 means unlimited.
 */
export class TokenBucket {
  readonly burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(
    readonly rate: number,
    o: TokenBucketOptions = {},
  ) {
    this.burst = o.burst ?? rate;
    this.#now = o.now ?? (() => performance.now());
    this.#tokens = this.burst;
    this.#last = this.#now();
  }

  /**
   * Takes `n` tokens only when the bucket holds them (no debt): false means refuse now.
   * For admission control (lookups per second), where `take` is for pacing bytes.
   */
  tryTake(n = 1): boolean {
    if (this.rate <= 0) return true;
    const now = this.#now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.rate);
    this.#last = now;
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  /** Milliseconds to wait before `n` bytes may pass (and takes them). */
  take(n: number): number {
    if (this.rate <= 0) return 0;
    const now = this.#now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.rate);
    this.#last = now;
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.rate) * 1000);
  }
}
