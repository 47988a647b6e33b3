import { describe, expect, it } from 'vitest';
import { BOOT_TOKEN, BootTokens } from '../src/index.js';

const MAC = '52:54:00:12:34:56';

function tokens(max = 100) {
  const clock = { t: 1_000_000 };
  return { clock, t: new BootTokens({ max, ttlMs: 600_000, now: () => clock.t }) };
}

describe('boot tokens', () => {
  it('hands one MAC the same random token until it is used, then a new one', () => {
    const { t } = tokens();
    const a = t.forMac(MAC);
    expect(a).toMatch(BOOT_TOKEN);
    expect(t.forMac(MAC)).toBe(a);
    expect(t.forMac('52:54:00:12:34:57')).not.toBe(a);
    expect(t.take(MAC, a)).toBe('ok');
    expect(t.take(MAC, a)).toBe('invalid'); // single use
    expect(t.forMac(MAC)).not.toBe(a);
    expect(t.counters).toMatchObject({ minted: 3, used: 1, invalid: 1 });
  });

  it("refuses an absent, wrong, other MAC's or expired token, and a wrong guess does not spoil the live one", () => {
    const { t, clock } = tokens();
    const a = t.forMac(MAC);
    const other = t.forMac('52:54:00:12:34:57');
    expect(t.take(MAC, undefined)).toBe('absent');
    expect(t.take(MAC, '')).toBe('absent');
    expect(t.take(MAC, 'A'.repeat(22))).toBe('invalid');
    expect(t.take(MAC, `${a}x`)).toBe('invalid');
    expect(t.take(MAC, other)).toBe('invalid');
    expect(t.take('52:54:00:12:34:58', a)).toBe('invalid');
    expect(t.take(MAC, a)).toBe('ok');
    const b = t.forMac(MAC);
    clock.t += 600_000;
    expect(t.take(MAC, b)).toBe('invalid');
    expect(t.forMac(MAC)).not.toBe(b); // an expired token is replaced
  });

  it('tracks at most max MACs, forgetting the oldest minted', () => {
    const { t } = tokens(100);
    const first = t.forMac('02:00:00:00:00:00');
    for (let i = 1; i <= 100; i++) t.forMac(`02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
    expect(t.size).toBe(100);
    expect(t.take('02:00:00:00:00:00', first)).toBe('invalid');
  });
});
