import { describe, it, expect } from 'vitest';
import { negotiateOptions } from '../src/index.js';

const limits = { maxBlksize: 1468, maxWindowsize: 16 };

describe('option negotiation', () => {
  it('answers only the options asked for, in the client order', () => {
    const n = negotiateOptions([['windowsize', '4'], ['blksize', '1432'], ['foo', '1']], limits);
    expect(n.oack).toEqual([['windowsize', '4'], ['blksize', '1432']]);
    expect(n.blksize).toBe(1432);
    expect(n.windowsize).toBe(4);
  });
  it('clamps blksize to the configured maximum and ignores values below 8', () => {
    expect(negotiateOptions([['blksize', '65464']], limits).blksize).toBe(1468);
    expect(negotiateOptions([['blksize', '99999999999999999999']], limits).oack).toEqual([['blksize', '1468']]);
    const small = negotiateOptions([['blksize', '7']], limits);
    expect(small.blksize).toBe(512);
    expect(small.oack).toEqual([]);
  });
  it('clamps windowsize and ignores 0', () => {
    expect(negotiateOptions([['windowsize', '64']], limits).windowsize).toBe(16);
    expect(negotiateOptions([['windowsize', '0']], limits).oack).toEqual([]);
  });
  it('accepts timeout 1..255 seconds only', () => {
    expect(negotiateOptions([['timeout', '3']], limits).timeoutMs).toBe(3000);
    expect(negotiateOptions([['timeout', '0']], limits).oack).toEqual([]);
    expect(negotiateOptions([['timeout', '256']], limits).oack).toEqual([]);
  });
  it('records tsize for the caller to answer, and ignores non-numeric values', () => {
    const n = negotiateOptions([['tsize', '0'], ['blksize', '12ab']], limits);
    expect(n.tsizeAsked).toBe(true);
    expect(n.oack).toEqual([]);
  });
  it('takes the first of duplicated options', () => {
    expect(negotiateOptions([['blksize', '1024'], ['blksize', '512']], limits).oack).toEqual([['blksize', '1024']]);
  });

  it('grants a timeout only up to maxTimeoutMs and leaves a larger one out of the OACK', () => {
    const clamp = { ...limits, maxTimeoutMs: 5000 };
    expect(negotiateOptions([['timeout', '5']], clamp)).toMatchObject({ timeoutMs: 5000, oack: [['timeout', '5']] });
    const big = negotiateOptions([['timeout', '255'], ['blksize', '1024']], clamp);
    expect(big.timeoutMs).toBeUndefined();
    expect(big.oack).toEqual([['blksize', '1024']]);
    expect(negotiateOptions([['timeout', '6']], clamp).oack).toEqual([]);
  });
});
