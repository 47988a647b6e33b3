import { describe, expect, it } from 'vitest';
import { prng } from '@outpost/testing';
import { decodeEntry, encodeEntry, type StoredEntry } from '../src/journal-entry.js';

describe('the level journal entry codec', () => {
  it('round-trips puts and deletes with any text, commas, newlines and non-ASCII included', () => {
    const e: StoredEntry = {
      at: 1_765_000_000_123,
      h: 41,
      ops: [
        { key: '!agents!a1', value: '{"name":"pc,1\\n","os":"Débian 12 🐧"}' },
        { key: '!agents!a2', value: undefined },
        { key: '!sites!x\n1,2', value: '' },
      ],
    };
    const text = encodeEntry(e);
    expect(text.startsWith('1765000000123,41,3\n10,')).toBe(true);
    expect(decodeEntry(text)).toEqual(e);
    expect(decodeEntry(encodeEntry({ at: 5, h: 0, ops: [] }))).toEqual({ at: 5, h: 0, ops: [] });
  });

  it('returns undefined for what is not an entry, truncated, padded or random, and never throws', () => {
    const text = encodeEntry({ at: 1, h: 0, ops: [{ key: '!a!b', value: '"c"' }] });
    for (const bad of ['', 'not an entry', '1,0\n', '1,0,1\n', '1,0,1\n4,3\n!a!b', `${text}x`, '1,0,1\n-4,3\n!a!b"c"', '1,,1\n4,-1\n!a!b', '1,0,-1\n']) {
      expect(decodeEntry(bad)).toBeUndefined();
    }
    for (let cut = 0; cut < text.length; cut++) expect(decodeEntry(text.slice(0, cut))).toBeUndefined();
    const random = prng(18);
    for (let i = 0; i < 2_000; i++) {
      const s = Array.from({ length: Math.floor(random() * 24) }, () => '0123456789,-\n!ab'[Math.floor(random() * 16)]).join('');
      expect(() => decodeEntry(s)).not.toThrow();
    }
  });
});
