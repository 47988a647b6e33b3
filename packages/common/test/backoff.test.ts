import { describe, expect, it } from 'vitest';
import { backoffDelay } from '@outpost/common';

const MIN = 60_000;
const DAY = 86_400_000;
const noJitter = { random: () => 0.5 };

describe('backoffDelay', () => {
  it('retries after 3·2^N minutes: 3, 6, 12 ... 768 minutes', () => {
    const delays = Array.from({ length: 9 }, (_, n) => backoffDelay(n, noJitter) / MIN);
    expect(delays).toEqual([3, 6, 12, 24, 48, 96, 192, 384, 768]);
  });

  it('caps the delay at 24 h and then retries daily, however many failures', () => {
    for (const n of [9, 10, 20, 60, 61, 1000, Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY]) {
      expect(backoffDelay(n, noJitter)).toBe(DAY);
    }
  });

  it('spreads a delay over ±10 % with the injected random source', () => {
    expect(backoffDelay(0, { random: () => 0 })).toBe(162_000); // 3 min − 10 %
    expect(backoffDelay(0, { random: () => 0.75 })).toBe(189_000); // 3 min + 5 %
    expect(backoffDelay(0, { random: () => 1 - Number.EPSILON })).toBe(198_000); // 3 min + 10 %
    expect(backoffDelay(2, { random: () => 0.25 })).toBe(684_000); // 12 min − 5 %
  });

  it('keeps jittered delays at the cap within ±10 % of 24 h', () => {
    expect(backoffDelay(30, { random: () => 0 })).toBe(Math.round(0.9 * DAY));
    expect(backoffDelay(30, { random: () => 1 - Number.EPSILON })).toBe(Math.round(1.1 * DAY));
  });

  it('stays within the jitter bounds for any random value', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let n = 0; n < 15; n++) {
      const raw = Math.min(DAY, 3 * MIN * 2 ** n);
      for (let i = 0; i < 200; i++) {
        const d = backoffDelay(n, { random });
        expect(d).toBeGreaterThanOrEqual(Math.floor(raw * 0.9));
        expect(d).toBeLessThanOrEqual(Math.ceil(raw * 1.1));
      }
    }
  });

  it('honours baseMs, capMs and jitter options', () => {
    const opts = { baseMs: 1000, capMs: 10_000, jitter: 0, random: () => 0 };
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, opts))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(backoffDelay(0, { baseMs: 1000, jitter: 0.5, random: () => 0 })).toBe(500);
  });

  it('never returns a negative delay, even with jitter above 100 %', () => {
    expect(backoffDelay(0, { jitter: 2, random: () => 0 })).toBe(0);
  });

  it('treats a negative or fractional attempt as the whole attempt below it, from 0', () => {
    expect(backoffDelay(-3, noJitter)).toBe(3 * MIN);
    expect(backoffDelay(1.9, noJitter)).toBe(6 * MIN);
  });

  it('treats a NaN attempt (e.g. a missing counter plus one) as the first retry, not NaN', () => {
    expect(backoffDelay(Number.NaN, noJitter)).toBe(3 * MIN);
  });
});
