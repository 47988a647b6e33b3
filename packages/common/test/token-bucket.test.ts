import { describe, expect, it } from 'vitest';
import { TokenBucket } from '@outpost/common';

describe('TokenBucket.tryTake', () => {
  it('admits up to the burst, then refuses without going into debt, and refills at the rate', () => {
    let now = 0;
    const b = new TokenBucket(10, { burst: 3, now: () => now });
    expect([b.tryTake(), b.tryTake(), b.tryTake(), b.tryTake()]).toEqual([true, true, true, false]);
    for (let i = 0; i < 100; i++) expect(b.tryTake()).toBe(false);
    now += 100; // one token at 10/s, whatever was refused before
    expect(b.tryTake()).toBe(true);
    expect(b.tryTake()).toBe(false);
    expect(new TokenBucket(0).tryTake(1e9)).toBe(true);
  });
});
