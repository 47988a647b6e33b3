import { describe, it, expect } from 'vitest';
import { NetasciiEncoder, NetasciiDecoder } from '../src/index.js';

describe('netascii', () => {
  it('encodes LF as CR LF and CR as CR NUL', () => {
    expect(new NetasciiEncoder().push(Buffer.from('a\nb\rc'))).toEqual(Buffer.from('a\r\nb\r\0c'));
  });
  it('decodes across chunk boundaries and flushes a trailing CR', () => {
    const d = new NetasciiDecoder();
    const out = Buffer.concat([d.push(Buffer.from('a\r')), d.push(Buffer.from('\nb\r')), d.push(Buffer.from('\0c\r')), d.end()]);
    expect(out).toEqual(Buffer.from('a\nb\rc\r'));
  });
  it('round-trips arbitrary bytes', () => {
    const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256));
    const wire = new NetasciiEncoder().push(data);
    const d = new NetasciiDecoder();
    const parts = [];
    for (let i = 0; i < wire.length; i += 333) parts.push(d.push(wire.subarray(i, i + 333)));
    parts.push(d.end());
    expect(Buffer.concat(parts)).toEqual(data);
  });
});
