import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../../src/index.js';

describe('LatencyHistogram', () => {
  it('reports quantiles within ~3 % of the true value', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 10_000; i++) h.recordMs(i / 100); // 0.01 .. 100 ms
    const s = h.summary();
    expect(s.count).toBe(10_000);
    expect(s.p50).toBeGreaterThan(50 * 0.97);
    expect(s.p50).toBeLessThan(50 * 1.03);
    expect(s.p99).toBeGreaterThan(99 * 0.97);
    expect(s.p99).toBeLessThanOrEqual(100);
    expect(s.max).toBe(100);
    expect(s.mean).toBeCloseTo(50.005, 2);
  });

  it('is exact below 64 µs and caps huge values in the last bucket', () => {
    const h = new LatencyHistogram();
    h.recordMs(0.005);
    expect(h.quantileMs(1)).toBe(0.005);
    h.recordMs(1e12);
    expect(Number.isFinite(h.quantileMs(1))).toBe(true);
  });

  it('merges histograms from several processes by adding counts', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    for (let i = 0; i < 100; i++) a.recordMs(1);
    for (let i = 0; i < 100; i++) b.recordMs(10);
    const m = new LatencyHistogram().merge(a.toJSON()).merge(JSON.parse(JSON.stringify(b.toJSON())));
    expect(m.count).toBe(200);
    expect(m.quantileMs(0.25)).toBeCloseTo(1, 1);
    expect(m.quantileMs(0.75)).toBeGreaterThan(9.6);
    expect(m.summary().max).toBe(10);
  });

  it('is empty-safe', () => {
    expect(new LatencyHistogram().summary()).toEqual({ count: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 });
  });
});
