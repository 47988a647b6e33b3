/**
 * A token bucket in bytes. `take(n)` always succeeds by going into debt and returns how
 * long the caller should pause (ms) before sending more, so a sender keeps its rate on
 * average without ever splitting a packet. The burst is 1/8 s of the rate (at least one
 * large packet).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly burst: number;

  constructor(
    private readonly bytesPerSec: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.burst = Math.max(bytesPerSec / 8, 1500);
    this.tokens = this.burst;
    this.last = now();
  }

  take(n: number): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.bytesPerSec) / 1000);
    this.last = t;
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.bytesPerSec);
  }
}
