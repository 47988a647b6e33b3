import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '@outpost/common';
import { prng, removeDir, tempDir } from '@outpost/testing';
import { LevelJournal } from '../../src/journal-level.js';
import type { JournalEntry } from '../../src/journal.js';

const WRITER = fileURLToPath(new URL('../fixtures/journal-writer.mjs', import.meta.url));
const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) await removeDir(d);
});

/** Starts the writer on `dir`; resolves once it has written 200 batches. */
async function startWriter(dir: string, run: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [WRITER, dir, run], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => [undefined])])) as [string | undefined];
  if (!line) throw new Error('the journal writer exited before it wrote');
  return child;
}

describe('the level journal under kill -9', () => {
  it('after each kill an entry exists iff its change does: every entry is in the store, every record written has its entry, no gaps', async () => {
    const dir = await tempDir('outpost-journal-crash-');
    dirs.push(dir);
    const random = prng(17);
    let lastHead = 0;
    for (let round = 0; round < 3; round++) {
      const child = await startWriter(dir, `r${round}`);
      await new Promise((r) => setTimeout(r, 20 + Math.floor(random() * 200)));
      child.kill('SIGKILL');
      await once(child, 'exit');

      const db = await openDatabase(dir);
      try {
        const journal = await LevelJournal.open(db, { retentionMs: 3_600_000 });
        const head = journal.head();
        expect(head).toBeGreaterThan(lastHead + 200);
        const entries: JournalEntry[] = [];
        for (let after = 0; after < head; after = entries.at(-1)!.seq) entries.push(...(await journal.read(after, 5_000)));
        // Gapless from 1 to the head, and the head is the last entry.
        expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
        // Every entry's ops are in the store, as written.
        const store = new Map<string, string>();
        for await (const [k, v] of db.iterator({ valueEncoding: 'utf8' } as never) as unknown as AsyncIterable<[string, string]>) store.set(k, v);
        const journaled = new Set<string>();
        for (const e of entries) {
          for (const op of e.ops) {
            expect(store.get(op.key)).toBe(op.value);
            journaled.add(op.key);
          }
        }
        // Every record and index entry written by the loops (and in the store) has its entry.
        const written = [...store.keys()].filter((k) => k.startsWith('!loop!') || k.startsWith('!loop-idx!'));
        expect(written.length).toBeGreaterThan(400 * (round + 1));
        expect(written.filter((k) => !journaled.has(k))).toEqual([]);
        // A batch's two writes are one entry: its counter names both.
        for (const e of entries.filter((x) => x.ops.length > 0)) {
          const { run, i } = JSON.parse(e.ops[0]!.value!) as { run: string; i: number };
          expect(e.ops.map((o) => o.key)).toEqual([`!loop!${run}-${i}`, `!loop-idx!${i}-${run}`]);
        }
        lastHead = head;
        journal.close();
      } finally {
        await db.close();
      }
    }
  }, 60_000);
});
