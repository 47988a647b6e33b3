import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '@outpost/common';
import type { ContentStore } from './content-store.js';
import { NAME_RE } from './manifest.js';
import type { FileEntry } from './model.js';

/** Most files walked in one dropped folder. */
const MAX_WALK = 100_000;

interface Snapshot {
  files: { abs: string; path: string; size: number; mtimeMs: number }[];
  key: string;
}

async function walk(root: string): Promise<Snapshot> {
  const files: Snapshot['files'] = [];
  const stack = [root];
  while (stack.length > 0 && files.length < MAX_WALK) {
    const dir = stack.pop()!;
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const abs = join(dir, e.name);
      if (e.isDirectory()) stack.push(abs);
      else if (e.isFile()) {
        const st = await stat(abs);
        files.push({ abs, path: relative(root, abs).split(sep).join('/'), size: st.size, mtimeMs: st.mtimeMs });
      }
      // Symlinks, sockets, devices: never followed, never imported.
    }
  }
  files.sort((a, b) => (a.path < b.path ? -1 : 1));
  return { files, key: files.map((f) => `${f.path}:${f.size}:${f.mtimeMs}`).join('\n') };
}

export interface DropFolderOptions {
  dir: string;
  settleMs: number;
  content: ContentStore;
  /** Creates the package from imported files (idempotent for the same manifest). */
  create(name: string, version: string | undefined, files: FileEntry[]): Promise<void>;
  log: Logger;
}

/**
 * Watches a folder: each sub-folder `NAME` or `NAME@VERSION` becomes a package once no
 * change has been seen in it for the settle time and a second look finds every file the
 * same size and age as before and after hashing (so a folder still being copied never
 * becomes a package). Dot-files and symlinks are skipped.
 */
export class DropFolder {
  #watcher: FSWatcher | undefined;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #imported = new Map<string, string>();
  #running: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(private readonly o: DropFolderOptions) {}

  async start(): Promise<void> {
    this.#stopped = false;
    this.#watcher = watch(this.o.dir, { ignoreInitial: false, ignored: (p: string) => relative(this.o.dir, p).split(sep).some((s) => s.startsWith('.')), depth: 32 });
    this.#watcher.on('all', (_event: string, path: string) => this.#touched(path));
    this.#watcher.on('error', (err: unknown) => this.o.log.warn({ err }, 'drop folder watcher error'));
    await new Promise<void>((resolve) => this.#watcher!.once('ready', () => resolve()));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    await this.#watcher?.close();
    await this.#running.catch(() => undefined);
  }

  #touched(path: string): void {
    const rel = relative(this.o.dir, path);
    if (rel === '' || rel.startsWith('..')) return;
    const top = rel.split(sep)[0]!;
    this.#schedule(top, this.o.settleMs);
  }

  #schedule(top: string, delay: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timers.get(top));
    const t = setTimeout(() => {
      this.#timers.delete(top);
      this.#running = this.#running.then(() => this.#import(top)).catch((err: unknown) => this.o.log.error({ err, folder: top }, 'drop folder import failed'));
    }, delay);
    t.unref();
    this.#timers.set(top, t);
  }

  async #import(top: string): Promise<void> {
    if (this.#stopped) return;
    const at = top.indexOf('@');
    const name = at > 0 ? top.slice(0, at) : top;
    const version = at > 0 ? top.slice(at + 1) : undefined;
    if (!NAME_RE.test(name) || (version !== undefined && !NAME_RE.test(version))) {
      this.o.log.warn({ folder: top }, 'drop folder entry is not NAME or NAME@VERSION; ignored');
      return;
    }
    const root = join(this.o.dir, top);
    const st = await stat(root).catch(() => undefined);
    if (!st?.isDirectory()) return;
    const before = await walk(root);
    if (before.files.length === 0 || this.#imported.get(top) === before.key) return;
    // The watcher coalesces and throttles events: trust the files' own times too. A file
    // written less than the settle time ago means the folder has not settled yet.
    const newest = Math.max(...before.files.map((f) => f.mtimeMs), (await stat(root).catch(() => undefined))?.mtimeMs ?? 0);
    const quiet = Date.now() - newest;
    if (quiet < this.o.settleMs) {
      this.#schedule(top, Math.max(50, this.o.settleMs - quiet));
      return;
    }
    const files: FileEntry[] = [];
    for (const f of before.files) {
      if (this.#stopped) return;
      const { sha256, size } = await this.o.content.importFile(f.abs);
      files.push({ path: f.path, size, sha256 });
    }
    const after = await walk(root);
    if (after.key !== before.key || files.some((f, i) => f.size !== before.files[i]!.size)) {
      this.o.log.info({ folder: top }, 'drop folder entry changed while importing; waiting for it to settle');
      this.#schedule(top, this.o.settleMs);
      return;
    }
    await this.o.create(name, version, files);
    this.#imported.set(top, before.key);
    this.o.log.info({ folder: top, files: files.length }, 'drop folder entry imported');
  }
}
