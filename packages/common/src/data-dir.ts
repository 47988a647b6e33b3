import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import type { Logger } from 'pino';

/*
 * Data dirs hold per-principal datagram keys, site-server credentials and level
 * databases: nobody but the service's user may read them. A service process sets a
 * private umask before it opens anything (new dirs 0700, new files 0600, whatever the
 * login umask was), and a start-up check names every path an older install or an
 * operator left looser, with the fix.
 */

/** The umask services run with: no group or other bits on anything they create. */
export const PRIVATE_UMASK = 0o077;

/**
 * Sets the process umask to {@link PRIVATE_UMASK}; returns the previous one. Call it
 * first thing in a service's entry point. In a worker thread (where Node cannot set the
 * umask) it changes nothing and returns undefined.
 */
export function usePrivateUmask(): number | undefined {
  if (!isMainThread) return undefined;
  return process.umask(PRIVATE_UMASK);
}

/** A path whose mode gives group or other any access. */
export interface LoosePath {
  path: string;
  /** Permission bits, e.g. 0o755. */
  mode: number;
}

export interface LooseCheckOptions {
  /** Files readable by all on purpose (a CA certificate): not reported. */
  publicFiles?: ReadonlySet<string>;
}

/**
 * Each dir and the entries one level inside it (two levels for subdirectories, e.g.
 * `db/` and its files) whose mode has any group/other bit. Missing dirs are skipped;
 * symlinks are not followed.
 */
export async function findLoosePaths(dirs: readonly string[], o: LooseCheckOptions = {}): Promise<LoosePath[]> {
  const out: LoosePath[] = [];
  const check = async (path: string): Promise<boolean> => {
    const st = await stat(path).catch(() => undefined);
    if (!st) return false;
    const mode = st.mode & 0o777;
    if ((mode & 0o077) !== 0 && !(st.isFile() && o.publicFiles?.has(path))) out.push({ path, mode });
    return st.isDirectory();
  };
  const entries = async (dir: string): Promise<string[]> => (await readdir(dir).catch(() => [] as string[])).map((e) => join(dir, e));
  for (const dir of new Set(dirs)) {
    if (!(await check(dir))) continue;
    for (const child of await entries(dir)) {
      if (!(await check(child))) continue;
      for (const grandchild of await entries(child)) await check(grandchild);
    }
  }
  return out;
}

/**
 * Logs one warning per data dir that holds loose paths, naming each (at most 20 per dir)
 * and the fix. Resolves with every loose path found.
 */
export async function warnLooseDataDirs(dirs: readonly string[], log: Logger, o: LooseCheckOptions = {}): Promise<LoosePath[]> {
  const all: LoosePath[] = [];
  for (const dir of new Set(dirs)) {
    const loose = await findLoosePaths([dir], o);
    if (loose.length === 0) continue;
    all.push(...loose);
    log.warn(
      {
        event: 'data-dir-loose-modes',
        dataDir: dir,
        paths: loose.slice(0, 20).map((p) => `${p.path} ${p.mode.toString(8).padStart(4, '0')}`),
        more: Math.max(0, loose.length - 20),
        fix: `chmod -R go-rwx ${dir}`,
      },
      `data dir ${dir} is readable by other users (it holds keys and credentials); fix: chmod -R go-rwx ${dir}`,
    );
  }
  return all;
}
