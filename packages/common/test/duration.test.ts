import { describe, expect, it } from 'vitest';
import { CommonErrors, OutpostError, parseDuration } from '@outpost/common';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    ['1h30m', 5_400_000],
    ['1d2h3m4s5ms', 93_784_005],
    ['1.5h', 5_400_000],
    ['0.5s', 500],
    ['0s', 0],
    ['1500', 1500],
    ['  10s  ', 10_000],
    ['1m1ms', 60_001],
  ])('parses %j as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('rounds fractional milliseconds to the nearest whole one', () => {
    expect(parseDuration('1.0004s')).toBe(1000);
    expect(parseDuration('0.0006s')).toBe(1);
  });

  it('passes a non-negative finite number through as milliseconds', () => {
    expect(parseDuration(0)).toBe(0);
    expect(parseDuration(250)).toBe(250);
    expect(parseDuration(1.5)).toBe(1.5);
  });

  it.each(['', ' ', 'ms', '10x', '10 s', '-5s', '5s ago', 's5', '1h 30m', '1.5', '1e3s', '1..5s', 'h1', '10S', '1h30'])(
    'rejects %j with COMMON_BAD_DURATION (400)',
    (text) => {
      let err: unknown;
      try {
        parseDuration(text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OutpostError);
      expect((err as OutpostError).code).toBe(CommonErrors.BAD_DURATION);
      expect((err as OutpostError).status).toBe(400);
      expect((err as OutpostError).message).toContain(`'${text}'`);
    },
  );

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects the number %d with COMMON_BAD_DURATION', (n) => {
    expect(() => parseDuration(n)).toThrow(expect.objectContaining({ code: CommonErrors.BAD_DURATION, status: 400 }));
  });
});
