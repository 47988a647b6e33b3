import { describe, expect, it } from 'vitest';
import { parseRange } from '@outpost/common';
import { expectErrorsDocumented } from '@outpost/testing';
import { PackageServerErrors, TokenBucket, resolvePath } from '../src/index.js';

const file = { path: 'a/b c.txt', size: 10, sha256: 'f'.repeat(64) };
const serving = new Map([['pk_1', new Map([[file.path, file]])]]);

describe('resolvePath', () => {
  it('finds a manifest file with each segment percent-decoded', () => {
    expect(resolvePath('/packages/pk_1/a/b%20c.txt', serving)).toEqual({ ok: true, id: 'pk_1', file });
    expect(resolvePath('/packages/pk_1/a/b%20c.txt?x=1', serving).ok).toBe(true);
  });
  it('answers 400 for .., encoded dots, encoded slashes, empty segments, bad escapes and absolute targets', () => {
    for (const u of ['/packages/pk_1/../a/b%20c.txt', '/packages/pk_1/%2e%2e/etc/passwd', '/packages/pk_1/a%2Fb%20c.txt', '/packages/pk_1//a', '/packages/pk_1/%zz', 'http://x/packages/pk_1/a/b%20c.txt', '/packages/pk_1/a/%00']) {
      expect(resolvePath(u, serving), u).toMatchObject({ ok: false, status: 400 });
    }
  });
  it('answers 404 for files and packages it does not serve', () => {
    expect(resolvePath('/packages/pk_1/etc/passwd', serving)).toMatchObject({ ok: false, status: 404 });
    expect(resolvePath('/packages/pk_2/a/b%20c.txt', serving)).toMatchObject({ ok: false, status: 404 });
    expect(resolvePath('/other', serving)).toMatchObject({ ok: false, status: 404 });
  });
});

describe('parseRange', () => {
  it('handles first-last, open-ended, suffix, clipping, unsatisfiable and ignored forms', () => {
    expect(parseRange('bytes=0-4', 10)).toEqual({ kind: 'range', start: 0, end: 4 });
    expect(parseRange('bytes=5-', 10)).toEqual({ kind: 'range', start: 5, end: 9 });
    expect(parseRange('bytes=-3', 10)).toEqual({ kind: 'range', start: 7, end: 9 });
    expect(parseRange('bytes=-30', 10)).toEqual({ kind: 'range', start: 0, end: 9 });
    expect(parseRange('bytes=8-100', 10)).toEqual({ kind: 'range', start: 8, end: 9 });
    expect(parseRange('bytes=10-', 10)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', 10)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-1,3-4', 10)).toEqual({ kind: 'ignore' });
    expect(parseRange('items=0-1', 10)).toEqual({ kind: 'ignore' });
    expect(parseRange('bytes=5-2', 10)).toEqual({ kind: 'ignore' });
    expect(parseRange(undefined, 10)).toEqual({ kind: 'none' });
  });
});

describe('TokenBucket', () => {
  it('lets a second of bytes through at once, then asks to wait in proportion', () => {
    const b = new TokenBucket(1000);
    expect(b.take(1000)).toBe(0);
    expect(b.take(500)).toBeGreaterThanOrEqual(490);
    expect(new TokenBucket(0).take(1e9)).toBe(0);
  });
});

describe('errors', () => {
  it('documents every error code in the README', async () => {
    await expectErrorsDocumented(new URL('../README.md', import.meta.url).pathname, Object.values(PackageServerErrors));
  });
});
