import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { OutpostError } from '@outpost/common';
import { InstallErrors } from './errors.js';

/** One file the core serves under `/install/files/`. */
export interface InstallFile {
  name: string;
  size: number;
  /** Hex sha256 of the content. */
  sha256: string;
}

/** Names a file may have to be served: no path, no hidden files. */
export const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,199}$/;

const hashFile = (file: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('error', reject)
      .on('data', (chunk) => h.update(chunk))
      .on('end', () => resolve(h.digest('hex')));
  });

/**
 * The artifacts directory: every regular file whose name is a {@link FILE_NAME} (the
 * `.sha256` side files excepted). Listed on each call, so a rebuilt package is served at
 * once; hashes are cached by size and mtime.
 */
export class ArtifactDir {
  readonly #cache = new Map<string, { size: number; mtimeMs: number; sha256: string }>();
  constructor(readonly dir: string) {}

  path(name: string): string {
    return join(this.dir, name);
  }

  async list(): Promise<InstallFile[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new OutpostError(InstallErrors.DIR, `cannot list the install directory ${this.dir}: ${(err as Error).message}`, { cause: err, details: { dir: this.dir } });
    }
    const files: InstallFile[] = [];
    for (const name of names.sort()) {
      if (!FILE_NAME.test(name) || name.endsWith('.sha256')) continue;
      const s = await stat(this.path(name)).catch(() => undefined);
      if (!s?.isFile()) continue;
      let cached = this.#cache.get(name);
      if (!cached || cached.size !== s.size || cached.mtimeMs !== s.mtimeMs) {
        cached = { size: s.size, mtimeMs: s.mtimeMs, sha256: await hashFile(this.path(name)) };
        this.#cache.set(name, cached);
      }
      files.push({ name, size: s.size, sha256: cached.sha256 });
    }
    return files;
  }
}

/** The single-file agent (`npm run package:agent`). */
export const AGENT_FILE = 'outpost-agent-linux-x64';
const DEB = /^outpost-agent_(.+)_amd64\.deb$/;

/** The agent .deb with the highest version among `files`, if any. */
export function agentDeb(files: readonly InstallFile[]): InstallFile | undefined {
  const debs = files.filter((f) => DEB.test(f.name));
  const version = (f: InstallFile): string => DEB.exec(f.name)![1]!;
  return debs.sort((a, b) => version(a).localeCompare(version(b), 'en', { numeric: true })).at(-1);
}
