/**
 * A latency histogram in microseconds with ~3 % resolution and fixed memory: values below
 * 64 µs have a bucket each; above, each power of two is split into 32 buckets. Histograms
 * from several processes merge by adding counts (`toJSON` / `merge`).
 */
const EXACT = 64;
const SUB = 32;
const MAX_EXP = 40; // 2^40 µs ≈ 12.7 days; anything larger lands in the last bucket
const SIZE = EXACT + (MAX_EXP - 6 + 1) * SUB;

function indexOf(us: number): number {
  const v = Math.max(0, Math.floor(us));
  if (v < EXACT) return v;
  const e = Math.min(MAX_EXP, v < 0x80000000 ? 31 - Math.clz32(v) : Math.floor(Math.log2(v)));
  const sub = Math.min(SUB - 1, Math.floor(v / 2 ** (e - 5)) - SUB);
  return EXACT + (e - 6) * SUB + Math.max(0, sub);
}

function valueOf(index: number): number {
  if (index < EXACT) return index;
  const e = Math.floor((index - EXACT) / SUB) + 6;
  const sub = (index - EXACT) % SUB;
  const low = (SUB + sub) * 2 ** (e - 5);
  return low + 2 ** (e - 5) / 2;
}

export interface LatencySummary {
  count: number;
  /** Milliseconds. */
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export class LatencyHistogram {
  readonly counts = new Float64Array(SIZE);
  count = 0;
  sumUs = 0;
  maxUs = 0;

  /** Records one latency, in milliseconds. */
  recordMs(ms: number): void {
    const us = ms * 1000;
    this.counts[indexOf(us)]!++;
    this.count++;
    this.sumUs += us;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** The latency (ms) below which `q` (0..1) of the samples lie. */
  quantileMs(q: number): number {
    if (this.count === 0) return 0;
    const target = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return Math.min(valueOf(i), this.maxUs) / 1000;
    }
    return this.maxUs / 1000;
  }

  summary(): LatencySummary {
    const r = (ms: number): number => Math.round(ms * 1000) / 1000;
    return {
      count: this.count,
      mean: r(this.count ? this.sumUs / this.count / 1000 : 0),
      p50: r(this.quantileMs(0.5)),
      p90: r(this.quantileMs(0.9)),
      p99: r(this.quantileMs(0.99)),
      max: r(this.maxUs / 1000),
    };
  }

  toJSON(): { counts: Array<[number, number]>; count: number; sumUs: number; maxUs: number } {
    const counts: Array<[number, number]> = [];
    this.counts.forEach((n, i) => {
      if (n > 0) counts.push([i, n]);
    });
    return { counts, count: this.count, sumUs: this.sumUs, maxUs: this.maxUs };
  }

  merge(other: { counts: Array<[number, number]>; count: number; sumUs: number; maxUs: number }): this {
    for (const [i, n] of other.counts) if (i >= 0 && i < SIZE) this.counts[i]! += n;
    this.count += other.count;
    this.sumUs += other.sumUs;
    this.maxUs = Math.max(this.maxUs, other.maxUs);
    return this;
  }
}
