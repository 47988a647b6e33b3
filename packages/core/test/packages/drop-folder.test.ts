import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '@outpost/common';
import { removeDir, tempDir, waitFor } from '@outpost/testing';
import { ContentStore } from '../../src/packages/content-store.js';
import { DropFolder } from '../../src/packages/drop-folder.js';
import type { FileEntry } from '../../src/packages/model.js';
import { sha } from './helpers.js';

const SETTLE = 400;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Created {
  name: string;
  version: string | undefined;
  files: FileEntry[];
  at: number;
}

describe('drop folder', () => {
  let dir: string;
  let drop: string;
  let content: ContentStore;
  let folder: DropFolder | undefined;
  let created: Created[];

  beforeEach(async () => {
    dir = await tempDir('outpost-drop-');
    drop = join(dir, 'drop');
    await mkdir(drop);
    content = new ContentStore(join(dir, 'content'), silentLogger());
    await content.open();
    created = [];
  });
  afterEach(async () => {
    await folder?.stop();
    folder = undefined;
    await removeDir(dir);
  });

  const start = async (store: ContentStore = content, settleMs = SETTLE): Promise<DropFolder> => {
    folder = new DropFolder({
      dir: drop,
      settleMs,
      content: store,
      log: silentLogger(),
      create: async (name, version, files) => {
        created.push({ name, version, files, at: Date.now() });
      },
    });
    await folder.start();
    return folder;
  };

  it('imports a folder that settled: NAME@VERSION, every file hashed into the content store, dot-files skipped', async () => {
    await mkdir(join(drop, 'tools@2.1', 'bin'), { recursive: true });
    await writeFile(join(drop, 'tools@2.1', 'bin', 'tool'), 'binary');
    await writeFile(join(drop, 'tools@2.1', 'readme.txt'), 'read me');
    await writeFile(join(drop, 'tools@2.1', '.copying.tmp'), 'a copier in progress');
    await start();
    await waitFor(() => created.length === 1, { timeoutMs: 30_000, what: 'the import' });
    expect(created[0]).toMatchObject({ name: 'tools', version: '2.1' });
    expect(created[0]!.files).toEqual([
      { path: 'bin/tool', size: 6, sha256: sha('binary') },
      { path: 'readme.txt', size: 7, sha256: sha('read me') },
    ]);
    expect(content.has(sha('binary')) && content.has(sha('read me'))).toBe(true);
    await sleep(SETTLE * 2);
    expect(created).toHaveLength(1);
  });

  it('never imports a folder while it is still being copied in slowly; imports it once it settles', async () => {
    // A longer settle time here: the copy writes every settle/10, so only a stall of this
    // process of 0.9 s between two writes could make the copy look settled.
    const settle = 1000;
    await start(content, settle);
    const pkg = join(drop, 'slow');
    await mkdir(pkg);
    const chunk = Buffer.alloc(4096, 7);
    const t0 = Date.now();
    // A slow copy: a write every settle/10 for 3·settle, to two files in turn.
    let writes = 0;
    let lastWrite = 0;
    while (Date.now() - t0 < settle * 3) {
      await appendFile(join(pkg, writes % 2 === 0 ? 'a.bin' : 'b.bin'), chunk);
      lastWrite = Date.now();
      writes++;
      await sleep(settle / 10);
      expect(created).toHaveLength(0);
    }
    await waitFor(() => created.length === 1, { timeoutMs: 30_000, what: 'the import after the copy settled' });
    expect(created[0]!.at - lastWrite).toBeGreaterThanOrEqual(settle - 50);
    const aWrites = Math.ceil(writes / 2);
    expect(created[0]!.files.map((f) => [f.path, f.size])).toEqual([
      ['a.bin', aWrites * 4096],
      ['b.bin', (writes - aWrites) * 4096],
    ]);
  });

  it('does not import a half-copied folder whose copy resumes while it is hashed; imports the whole one after', async () => {
    // The copy pauses longer than the settle time, then goes on while the folder is
    // being imported: the second look sees it changed, so the half is never a package.
    const pkg = join(drop, 'half');
    await mkdir(pkg);
    const first = Buffer.alloc(64 * 1024, 1);
    const rest = Buffer.alloc(64 * 1024, 2);
    await writeFile(join(pkg, 'big.bin'), first);
    await writeFile(join(pkg, 'small.txt'), 'x');
    let resumed = false;
    const racing = new ContentStore(join(dir, 'content'), silentLogger());
    await racing.open();
    const realImport = racing.importFile.bind(racing);
    racing.importFile = async (src: string) => {
      const r = await realImport(src);
      if (!resumed && src.endsWith('big.bin')) {
        resumed = true;
        await appendFile(join(pkg, 'big.bin'), rest);
      }
      return r;
    };
    await start(racing);
    await waitFor(() => created.length === 1, { timeoutMs: 30_000, what: 'the import of the whole folder' });
    expect(resumed).toBe(true);
    const whole = Buffer.concat([first, rest]);
    expect(created[0]!.files).toEqual([
      { path: 'big.bin', size: whole.length, sha256: sha(whole) },
      { path: 'small.txt', size: 1, sha256: sha('x') },
    ]);
    await sleep(SETTLE * 2);
    expect(created).toHaveLength(1);
  });

  it('ignores entries that are not NAME or NAME@VERSION, and empty folders', async () => {
    await mkdir(join(drop, 'bad name!'));
    await writeFile(join(drop, 'bad name!', 'f'), 'f');
    await mkdir(join(drop, 'empty'));
    await start();
    await sleep(SETTLE * 3);
    expect(created).toHaveLength(0);
  });

  it('imports a changed folder again (the package is made idempotently for the same manifest)', async () => {
    await mkdir(join(drop, 'app'));
    await writeFile(join(drop, 'app', 'v.txt'), '1');
    await start();
    await waitFor(() => created.length === 1, { timeoutMs: 30_000, what: 'the first import' });
    await writeFile(join(drop, 'app', 'v.txt'), '22');
    await waitFor(() => created.length === 2, { timeoutMs: 30_000, what: 'the second import' });
    expect(created[1]!.files).toEqual([{ path: 'v.txt', size: 2, sha256: sha('22') }]);
  });
});
