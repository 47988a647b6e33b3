import { describe, expect, it } from 'vitest';
import { msUntilPollSlot } from '../src/poll-slot.js';

describe('msUntilPollSlot', () => {
  it('gives each agent a fixed slot, so polls recur exactly one interval apart', () => {
    const t0 = 1_700_000_000_000;
    const first = msUntilPollSlot('ag_1', 60_000, t0);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(60_000);
    expect(msUntilPollSlot('ag_1', 60_000, t0 + first)).toBe(60_000);
  });

  it('spreads 15,000 agents evenly over the interval (no second gets more than 3x the mean)', () => {
    const interval = 1_800_000;
    const perSecond = new Uint16Array(1_800);
    for (let i = 0; i < 15_000; i++) perSecond[Math.floor((interval - msUntilPollSlot(`ag_${i}`, interval, 0)) / 1000) % 1_800]!++;
    expect(Math.max(...perSecond)).toBeLessThan((15_000 / 1_800) * 3);
  });
});
