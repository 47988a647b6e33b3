import { describe, expect, it } from 'vitest';
import { page } from '../../src/hierarchy/protocol.js';

const entry = (seq: number, ...ops: Array<[string, string | undefined]>) => ({ seq, ops: ops.map(([key, value]) => ({ key, value })) });
const mine = (key: string): boolean => key.startsWith('!task-defs!');

describe('page', () => {
  it('takes the selected ops of each entry until the byte bound, and covers entries with nothing selected', () => {
    const big = 'x'.repeat(400);
    const entries = [entry(1, ['!contacts!a', 'y']), entry(2, ['!task-defs!a', big]), entry(3, ['!task-defs!b', big], ['!contacts!b', big]), entry(4, ['!task-defs!c', big]), entry(5, ['!contacts!c', 'y'])];
    const p = page(entries, mine, 1_000);
    // 2 and 3 fit (about 820 bytes of selected ops), 4 would pass 1,000: the page ends at 3.
    expect(p.to).toBe(3);
    expect(p.entries.map((e) => [e.s, e.o.map((o) => o.k)])).toEqual([
      [2, ['!task-defs!a']],
      [3, ['!task-defs!b']],
    ]);
    // Nothing selected: every entry is covered, none sent.
    expect(page([entry(7, ['!contacts!a', 'y']), entry(8, ['!contacts!b', undefined])], mine, 1_000)).toEqual({ entries: [], to: 8 });
  });

  it('holds at least one entry, however large, and keeps deletes as ops without a value', () => {
    const huge = 'x'.repeat(5_000);
    const p = page([entry(4, ['!task-defs!a', huge], ['!task-defs!b', undefined]), entry(5, ['!task-defs!c', 'y'])], mine, 1_000);
    expect(p.to).toBe(4);
    expect(p.entries).toEqual([{ s: 4, o: [{ k: '!task-defs!a', v: huge }, { k: '!task-defs!b' }] }]);
  });
});
