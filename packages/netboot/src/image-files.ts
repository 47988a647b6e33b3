import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '@outpost/common';
import type { BootBackend, Manifest } from './core-client.js';
import { NetbootError, NetbootErrors } from './errors.js';

const INFO_TTL_MS = 30_000;

/**
 * Boot image files (package files) on this server: looked up in the image's package
 * manifest, fetched once (from the nearby package server when configured, else the
 * core), verified against the manifest sha256, kept content-addressed under
 * `<dataDir>/images/`. Concurrent requests for one file share one download.
 */
export class ImageFiles {
  readonly #info = new Map<string, { manifest: Manifest; at: number }>();
  readonly #downloads = new Map<string, Promise<string>>();
  readonly counters = { hits: 0, downloads: 0, downloadedBytes: 0, failures: 0 };

  constructor(
    private readonly dir: string,
    private readonly backend: BootBackend,
    private readonly opts: { packageServerUrl?: string | undefined; timeoutMs: number; now: () => number },
    private readonly log: Logger,
  ) {}

  async #manifest(image: string): Promise<Manifest> {
    const hit = this.#info.get(image);
    if (hit && this.opts.now() - hit.at < INFO_TTL_MS) return hit.manifest;
    const info = await this.backend.image(image);
    const manifest = info.packageInfo;
    if (!manifest) throw new NetbootError(NetbootErrors.IMAGE_FILE_NOT_FOUND, `boot image '${image}': its package '${info.package}' does not exist`, { status: 404 });
    if (this.#info.size > 1000) this.#info.clear();
    this.#info.set(image, { manifest, at: this.opts.now() });
    return manifest;
  }

  /** The local path of `path` in boot image `image` (downloaded first when needed). */
  async file(image: string, path: string): Promise<{ file: string; size: number; sha256: string }> {
    const m = await this.#manifest(image);
    const entry = m.files.find((f) => f.path === path);
    if (!entry) throw new NetbootError(NetbootErrors.IMAGE_FILE_NOT_FOUND, `boot image '${image}' has no file '${path}'`, { status: 404 });
    const local = join(this.dir, entry.sha256.slice(0, 2), entry.sha256);
    try {
      const st = await stat(local);
      if (st.size === entry.size) {
        this.counters.hits++;
        return { file: local, size: entry.size, sha256: entry.sha256 };
      }
    } catch {
      // not here yet
    }
    let p = this.#downloads.get(entry.sha256);
    if (!p) {
      p = this.#download(m.id, entry, local).finally(() => this.#downloads.delete(entry.sha256));
      this.#downloads.set(entry.sha256, p);
    }
    await p;
    return { file: local, size: entry.size, sha256: entry.sha256 };
  }

  async #download(pkgId: string, entry: { path: string; size: number; sha256: string }, local: string): Promise<string> {
    const core = this.backend.fileUrl(pkgId, entry.path);
    const sources = [
      ...(this.opts.packageServerUrl ? [{ url: `${this.opts.packageServerUrl.replace(/\/+$/, '')}/packages/${pkgId}/${entry.path.split('/').map(encodeURIComponent).join('/')}`, bearer: core.bearer }] : []),
      core,
    ];
    await mkdir(join(this.dir, entry.sha256.slice(0, 2)), { recursive: true });
    let last: unknown;
    for (const src of sources) {
      const tmp = `${local}.${process.pid}.${Math.random().toString(36).slice(2)}.part`;
      try {
        const res = await fetch(src.url, { headers: src.bearer ? { authorization: `Bearer ${src.bearer}` } : {}, signal: AbortSignal.timeout(Math.max(this.opts.timeoutMs, 10 * 60_000)) });
        if (!res.ok || !res.body) throw new Error(`${src.url}: HTTP ${res.status}`);
        const hash = createHash('sha256');
        let bytes = 0;
        const tap = new Transform({
          transform(chunk: Buffer, _e, cb) {
            hash.update(chunk);
            bytes += chunk.length;
            cb(null, chunk);
          },
        });
        await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), tap, createWriteStream(tmp, { mode: 0o644 }));
        const sha = hash.digest('hex');
        if (sha !== entry.sha256 || bytes !== entry.size) {
          throw new NetbootError(NetbootErrors.HASH_MISMATCH, `${src.url}: got ${bytes} bytes with sha256 ${sha}, expected ${entry.size} bytes ${entry.sha256}`);
        }
        await rename(tmp, local);
        this.counters.downloads++;
        this.counters.downloadedBytes += bytes;
        this.log.info({ path: entry.path, sha256: entry.sha256, bytes, source: src.url }, 'boot image file fetched');
        return local;
      } catch (err) {
        last = err;
        this.counters.failures++;
        await rm(tmp, { force: true });
        this.log.warn({ err, source: src.url, path: entry.path }, 'fetching a boot image file failed');
      }
    }
    throw last instanceof Error ? last : new Error(String(last));
  }
}
