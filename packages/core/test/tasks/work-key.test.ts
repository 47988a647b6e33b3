import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseWorkKey, runBody, signWork, verifyWork } from '@outpost/common';
import { removeDir, tempDir } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateWorkKey, WORK_KEY_FILES } from '../../src/tasks/work-key.js';

let dir: string | undefined;
afterEach(async () => {
  await removeDir(dir);
  dir = undefined;
});

describe('work-signing key', () => {
  it('is made once, mode 0600, and kept across restarts', async () => {
    dir = await tempDir('outpost-work-key-');
    const first = await loadOrCreateWorkKey(dir);
    expect(first.created).toBe(true);
    const file = join(dir, WORK_KEY_FILES.dir, WORK_KEY_FILES.key);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateWorkKey(dir);
    expect(again.created).toBe(false);
    expect(again.key.publicB64).toBe(first.key.publicB64);
    const body = runBody({ run: 'r', job: 'j', steps: [], expiresAt: 1, nonce: 'n' })!;
    expect(verifyWork(parseWorkKey(first.key.publicB64)!, body, signWork(again.key.privateKey, body))).toBe(true);
  });

  it('refuses a damaged key file with CORE_TASK_WORK_KEY_FILE', async () => {
    dir = await tempDir('outpost-work-key-');
    await loadOrCreateWorkKey(dir);
    await writeFile(join(dir, WORK_KEY_FILES.dir, WORK_KEY_FILES.key), 'garbage');
    await expect(loadOrCreateWorkKey(dir)).rejects.toMatchObject({ code: 'CORE_TASK_WORK_KEY_FILE' });
  });
});
