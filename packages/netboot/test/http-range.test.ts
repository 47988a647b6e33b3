import { describe, expect, it } from 'vitest';
import { parseRange } from '../src/index.js';
import { prng } from '@outpost/testing';

describe('Range header parser', () => {
  it('reads one byte range, a suffix, an open end; ignores what it does not take; 416 past the end', () => {
    expect(parseRange(undefined, 100)).toEqual({ kind: 'full' });
    expect(parseRange('bytes=0-9', 100)).toEqual({ kind: 'partial', start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ kind: 'partial', start: 0, end: 99 });
    expect(parseRange('bytes=95-200', 100)).toEqual({ kind: 'partial', start: 95, end: 99 });
    expect(parseRange('bytes=100-', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    for (const ignored of ['bytes=0-1,5-6', 'items=0-1', 'bytes=9-1', 'bytes=-', 'bytes=a-b', 'bytes 0-1', `bytes=0-${'1'.repeat(300)}`]) expect(parseRange(ignored, 100)).toEqual({ kind: 'full' });
  });

  it('never throws, and every range it gives lies inside the file (seeded fuzz)', () => {
    const rnd = prng(0x5a17e);
    const alphabet = 'bytes=0123456789-, \t\u0000é';
    for (let i = 0; i < 20_000; i++) {
      const size = Math.floor(rnd() * 1000);
      const len = Math.floor(rnd() * 24);
      let h = rnd() < 0.7 ? 'bytes=' : '';
      for (let k = 0; k < len; k++) h += alphabet[Math.floor(rnd() * alphabet.length)];
      const r = parseRange(h, size);
      if (r.kind === 'partial') {
        expect(r.start).toBeGreaterThanOrEqual(0);
        expect(r.end).toBeGreaterThanOrEqual(r.start);
        expect(r.end).toBeLessThan(size);
      }
    }
  });
});
