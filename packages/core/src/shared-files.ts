import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { OutpostError, sublevel, writeFileAtomic, type Database } from '@outpost/common';
import { ADMIN_TOKEN_FILE } from './admin-token.js';
import { CA_FILES } from './ca/authority.js';
import { CoreErrors } from './errors.js';
import { WORK_KEY_FILES } from './tasks/work-key.js';

/**
 * The files that make a core the core its agents and site servers enrolled with: the
 * owner's token, the CA (key, certificate, core id: every certificate names it) and the
 * work-signing key agents pin. Several cores on one store must hold the same ones: they
 * live in the store (sublevel `core-files`, path → content) and each core writes them to
 * its data dir (mode 0600) before its modules read them. Its own HTTPS certificate is not
 * shared: each core has its own names.
 */
export const SHARED_FILES: readonly string[] = [ADMIN_TOKEN_FILE, join(CA_FILES.dir, CA_FILES.key), join(CA_FILES.dir, CA_FILES.cert), join(CA_FILES.dir, CA_FILES.coreId), join(WORK_KEY_FILES.dir, WORK_KEY_FILES.key)];

async function readIfAny(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Before the modules start: each file the store holds is written to the data dir (a local
 * file that differs is refused: this data dir belongs to another core). Returns the
 * paths the store lacks, for {@link publishCoreFiles} once the modules made them.
 */
export async function fetchCoreFiles(db: Database, dataDir: string): Promise<string[]> {
  const files = sublevel<string>(db, 'core-files');
  const missing: string[] = [];
  for (const path of SHARED_FILES) {
    const stored = await files.get(path);
    const file = join(dataDir, path);
    const local = await readIfAny(file);
    if (stored === undefined) {
      missing.push(path);
      continue;
    }
    if (local === undefined) {
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      await writeFileAtomic(file, stored);
    } else if (local !== stored) {
      throw new OutpostError(
        CoreErrors.FILES_DIFFER,
        `${file} differs from the one the other cores of this store use: this data dir belongs to another core; start this core with an empty data dir (it takes the shared files from the store)`,
        { details: { file } },
      );
    }
  }
  return missing;
}

/** After the modules started: the files the store lacked go into it (the first core of a store publishes them). */
export async function publishCoreFiles(db: Database, dataDir: string, paths: readonly string[]): Promise<void> {
  const files = sublevel<string>(db, 'core-files');
  for (const path of paths) {
    const local = await readIfAny(join(dataDir, path));
    if (local !== undefined) await files.put(path, local);
  }
}
