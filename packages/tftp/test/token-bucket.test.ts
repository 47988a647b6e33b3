import { it, expect } from 'vitest';
import { sendBucket } from '../src/token-bucket.js';

it('lets a burst of 1/8 s through, then asks the sender to wait in proportion to its debt', () => {
  let now = 0;
  const b = sendBucket(80_000, () => now);
  expect(b.take(10_000)).toBe(0); // the whole burst
  expect(b.take(8_000)).toBe(100); // 8 kB of debt at 80 kB/s
  now = 100;
  expect(b.take(0)).toBe(0);
  now = 10_000;
  expect(b.take(10_000)).toBe(0); // refills up to the burst, not beyond
  expect(b.take(1)).toBeGreaterThan(0);
});
