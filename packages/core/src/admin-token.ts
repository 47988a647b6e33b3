import { chmod, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashSecret, newSecret, OutpostError, writeFileAtomic } from '@outpost/common';
import { CoreErrors } from './errors.js';

export const ADMIN_TOKEN_FILE = 'admin-token';
export const ADMIN_ID = 'admin';

/**
 * The admin credential lives in `<dataDir>/admin-token` (mode 0600), created on first
 * start. The file is the source of truth: deleting it and restarting rotates it.
 */
export async function loadOrCreateAdminToken(dataDir: string): Promise<{ token: string; hash: string; file: string; created: boolean }> {
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  try {
    const token = (await readFile(file, 'utf8')).trim();
    const secret = token.startsWith(`${ADMIN_ID}.`) ? token.slice(ADMIN_ID.length + 1) : '';
    if (secret.length < 16) {
      throw new OutpostError(CoreErrors.ADMIN_TOKEN_FILE, `${file} does not hold an admin token (expected 'admin.<secret>'); delete it to make a new one`);
    }
    await chmod(file, 0o600);
    return { token, hash: hashSecret(secret), file, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = newSecret();
  const token = `${ADMIN_ID}.${secret}`;
  await writeFileAtomic(file, `${token}\n`);
  return { token, hash: hashSecret(secret), file, created: true };
}
