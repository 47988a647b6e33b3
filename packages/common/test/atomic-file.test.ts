import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeDir, tempDir } from '@outpost/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../src/atomic-file.js';

let dir: string;
let umask: number;
beforeEach(async () => {
  dir = await tempDir('outpost-atomic-');
  umask = process.umask(0o022);
});
afterEach(async () => {
  process.umask(umask);
  await removeDir(dir);
});

describe('writeFileAtomic', () => {
  it('writes 0600 by default whatever the umask, and replaces a looser file with the mode asked', async () => {
    const file = join(dir, 'secret');
    await writeFile(file, 'old', { mode: 0o644 });
    await writeFileAtomic(file, 'new');
    expect(await readFile(file, 'utf8')).toBe('new');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await writeFileAtomic(file, Buffer.from('public'), { mode: 0o644, durable: false });
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    expect(await readdir(dir)).toEqual(['secret']);
  });

  it('creates the directory 0700 when asked, and fails without it', async () => {
    await expect(writeFileAtomic(join(dir, 'a', 'f'), 'x')).rejects.toMatchObject({ code: 'ENOENT' });
    await writeFileAtomic(join(dir, 'a', 'f'), 'x', { mkdir: true });
    expect((await stat(join(dir, 'a'))).mode & 0o777).toBe(0o700);
  });

  it('removes its temp file and leaves the target alone when the rename fails', async () => {
    // A non-empty directory where the file should go: the rename fails after the temp file is written.
    const target = join(dir, 'taken');
    await mkdir(target);
    await writeFile(join(target, 'inside'), 'old');
    await expect(writeFileAtomic(target, 'new')).rejects.toThrow();
    expect(await readdir(dir)).toEqual(['taken']);
    expect(await readFile(join(target, 'inside'), 'utf8')).toBe('old');
  });
});
