import { Transform } from 'node:stream';

/**
 * A token bucket shared by every stream it throttles: at most `rate` bytes/s on average,
 * bursts up to one second's worth. `rate` 0 means unlimited.
 */
export class TokenBucket {
  #tokens: number;
  #last = performance.now();

  constructor(readonly rate: number) {
    this.#tokens = rate;
  }

  /** Milliseconds to wait before `n` bytes may pass (and takes them). */
  take(n: number): number {
    if (this.rate <= 0) return 0;
    const now = performance.now();
    this.#tokens = Math.min(this.rate, this.#tokens + ((now - this.#last) / 1000) * this.rate);
    this.#last = now;
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.rate) * 1000);
  }

  /** A pass-through stream that delays chunks to keep to the rate. */
  stream(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        const wait = this.take(chunk.length);
        if (wait === 0) cb(null, chunk);
        else setTimeout(() => cb(null, chunk), wait);
      },
    });
  }
}
