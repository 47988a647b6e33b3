import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '@outpost/testing';
import { readMachineId } from '../src/machine-id.js';

let dir: string;
beforeEach(async () => {
  dir = await tempDir('outpost-machine-id-');
});
afterEach(async () => {
  await removeDir(dir);
});

describe('readMachineId', () => {
  it('reads the first line of the first file that holds an id', async () => {
    await writeFile(join(dir, 'b'), 'ABCDEF0123\nignored\n');
    expect(await readMachineId([join(dir, 'a'), join(dir, 'b')])).toEqual({ id: 'abcdef0123', file: join(dir, 'b') });
  });

  it('counts an empty or uninitialized file (an image before its first boot) as no id, like a missing one', async () => {
    await writeFile(join(dir, 'empty'), '');
    await writeFile(join(dir, 'uninit'), 'uninitialized\n');
    expect(await readMachineId([join(dir, 'empty'), join(dir, 'uninit'), join(dir, 'missing')])).toEqual({
      id: undefined,
      tried: [join(dir, 'empty'), join(dir, 'uninit'), join(dir, 'missing')],
    });
  });
});
