import { constants } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, statfs, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { sublevel, type Database, type Logger, type Sublevel } from '@outpost/common';

export interface FileEntry {
  path: string;
  size: number;
  sha256: string;
}

export interface Source {
  url: string;
  kind: 'core' | 'codebase';
  serverId?: string | undefined;
  inSite?: boolean | undefined;
}

/** A package this server holds or is staging (persisted, so staging resumes after a restart). */
export interface HeldPackage {
  id: string;
  name: string;
  version: string;
  manifestHash: string;
  files: FileEntry[];
  sources: Source[];
  ready: boolean;
}

const SHA_RE = /^[0-9a-f]{64}$/;

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  } finally {
    await fh.close();
  }
}

/**
 * The package server's store: content-addressed files `<dataDir>/content/sha256/<ab>/<sha>`
 * (written only by rename after the hash matched), partial downloads in
 * `<dataDir>/content/tmp/<sha>.part`, and the held packages in level. The serving index
 * (id → path → file) holds ready packages only.
 */
export class PackageStore {
  readonly contentDir: string;
  readonly tmpDir: string;
  readonly packages = new Map<string, HeldPackage>();
  /** Ready packages: id → path → file. What HTTP serves. */
  readonly serving = new Map<string, Map<string, FileEntry>>();
  readonly #db: Sublevel<HeldPackage>;

  constructor(
    readonly dataDir: string,
    db: Database,
    private readonly log: Logger,
  ) {
    this.contentDir = join(dataDir, 'content', 'sha256');
    this.tmpDir = join(dataDir, 'content', 'tmp');
    this.#db = sublevel<HeldPackage>(db, 'packages');
  }

  async open(): Promise<void> {
    await mkdir(this.contentDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    for (const p of await this.#db.values().all()) {
      this.packages.set(p.id, p);
      if (p.ready) {
        // A ready package is served only if every file is still there, whole.
        const ok = (await Promise.all(p.files.map((f) => this.present(f)))).every(Boolean);
        if (ok) this.#index(p);
        else await this.put({ ...p, ready: false });
      }
    }
    // Stray temp files of imports that never finished (not partial downloads).
    for (const name of await readdir(this.tmpDir)) if (!name.endsWith('.part')) await rm(join(this.tmpDir, name), { force: true });
  }

  pathOf(sha: string): string {
    return join(this.contentDir, sha.slice(0, 2), sha);
  }

  partialPath(sha: string): string {
    return join(this.tmpDir, `${sha}.part`);
  }

  /** True when the content file exists as a regular file of the right size (no symlinks). */
  async present(f: FileEntry): Promise<boolean> {
    const fh = await this.openContent(f.sha256);
    if (!fh) return false;
    try {
      const st = await fh.stat();
      return st.isFile() && st.size === f.size;
    } finally {
      await fh.close();
    }
  }

  /** Opens a content file read-only, refusing symlinks (O_NOFOLLOW). */
  async openContent(sha: string): Promise<FileHandle | undefined> {
    if (!SHA_RE.test(sha)) return undefined;
    return open(this.pathOf(sha), constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
  }

  /** Moves a verified partial into place. */
  async commit(partial: string, sha: string): Promise<void> {
    const dir = join(this.contentDir, sha.slice(0, 2));
    await mkdir(dir, { recursive: true });
    await rename(partial, this.pathOf(sha));
    await fsyncDir(dir);
  }

  async put(p: HeldPackage): Promise<void> {
    await this.#db.put(p.id, p);
    this.packages.set(p.id, p);
    if (p.ready) this.#index(p);
    else this.serving.delete(p.id);
  }

  #index(p: HeldPackage): void {
    this.serving.set(p.id, new Map(p.files.map((f) => [f.path, f])));
  }

  /** Stops serving a package (a file of it went bad) without forgetting it. */
  unserve(id: string): void {
    this.serving.delete(id);
  }

  /** Forgets a package and deletes content no other held package uses; returns bytes freed. */
  async remove(id: string): Promise<number> {
    const p = this.packages.get(id);
    if (!p) return 0;
    await this.#db.del(id);
    this.packages.delete(id);
    this.serving.delete(id);
    const used = new Set<string>();
    for (const other of this.packages.values()) for (const f of other.files) used.add(f.sha256);
    let freed = 0;
    for (const f of p.files) {
      if (used.has(f.sha256)) continue;
      used.add(f.sha256);
      for (const path of [this.pathOf(f.sha256), this.partialPath(f.sha256)]) {
        const st = await stat(path).catch(() => undefined);
        if (st?.isFile()) {
          await rm(path, { force: true });
          freed += st.size;
        }
      }
    }
    this.log.info({ package: id, freed }, 'package removed from the store');
    return freed;
  }

  /** Packages (ready) holding a content file. */
  holders(sha: string): HeldPackage[] {
    return [...this.packages.values()].filter((p) => p.ready && p.files.some((f) => f.sha256 === sha));
  }

  async freeBytes(): Promise<number> {
    const s = await statfs(this.dataDir);
    return Number(s.bavail) * Number(s.bsize);
  }
}
