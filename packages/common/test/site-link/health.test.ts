import { describe, expect, it } from 'vitest';
import { boundHealth, SITE_HEALTH_LIMITS } from '@outpost/common/site-link';

describe('boundHealth', () => {
  it('keeps a health report within what the core accepts', () => {
    const load = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]));
    const h = boundHealth({
      status: 'degraded',
      problems: Array.from({ length: 20 }, () => 'p'.repeat(300)),
      load: { ...load, 'bad key': 1, negative: -1, nan: Number.NaN, inf: Number.POSITIVE_INFINITY },
    });
    expect(h.status).toBe('degraded');
    expect(h.problems).toHaveLength(SITE_HEALTH_LIMITS.problems);
    expect(h.problems!.every((p) => p.length === SITE_HEALTH_LIMITS.problemChars)).toBe(true);
    expect(Object.keys(h.load!)).toEqual(Array.from({ length: 16 }, (_, i) => `k${i}`));
  });

  it('leaves out empty problems and load', () => {
    expect(boundHealth({ status: 'ok', problems: [], load: {} })).toEqual({ status: 'ok' });
  });
});
