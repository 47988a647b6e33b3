import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportWorkKey, OutpostError, writeFileAtomic } from '@outpost/common';
import { TaskErrors } from './errors.js';

/** `<dataDir>/work-key/work.key`: the core's Ed25519 work-signing key, PKCS#8 PEM, mode 0600. */
export const WORK_KEY_FILES = { dir: 'work-key', key: 'work.key' } as const;

export interface WorkKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public key as enrollment hands it to agents (SPKI DER, base64). */
  publicB64: string;
}

/**
 * The core's work-signing key: made on first start in its data dir and kept across
 * restarts (like the CA key). Only the core signs runs; agents pin the public half.
 */
export async function loadOrCreateWorkKey(dataDir: string): Promise<{ key: WorkKey; created: boolean }> {
  const dir = join(dataDir, WORK_KEY_FILES.dir);
  const file = join(dir, WORK_KEY_FILES.key);
  let pem: string | undefined;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new OutpostError(TaskErrors.WORK_KEY_FILE, `cannot read the work-signing key ${file}: ${(err as Error).message}`, { cause: err, details: { file } });
    }
  }
  if (pem !== undefined) {
    try {
      const privateKey = createPrivateKey(pem);
      if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`an ${privateKey.asymmetricKeyType} key, not ed25519`);
      const publicKey = createPublicKey(privateKey);
      return { key: { privateKey, publicKey, publicB64: exportWorkKey(publicKey) }, created: false };
    } catch (cause) {
      throw new OutpostError(TaskErrors.WORK_KEY_FILE, `the work-signing key ${file} is damaged: ${(cause as Error).message}`, { cause, details: { file } });
    }
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), { mode: 0o600 });
  return { key: { privateKey, publicKey, publicB64: exportWorkKey(publicKey) }, created: true };
}
