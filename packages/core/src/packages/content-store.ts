import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OutpostError, type Logger } from '@outpost/common';
import { PackageErrors } from './errors.js';
import { SHA256_RE } from './manifest.js';

/** What one upload request achieved. */
export interface UploadResult {
  /** Bytes of the file now held (in the partial, or all of it once complete). */
  received: number;
  complete: boolean;
}

/** Hashes a file (or its first `length` bytes). */
export async function hashFile(path: string, length?: number): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  if (length === 0) return { sha256: hash.digest('hex'), size };
  const stream = createReadStream(path, length === undefined ? { highWaterMark: 1 << 20 } : { end: length - 1, highWaterMark: 1 << 20 });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Package content on disk, content-addressed: `<dir>/sha256/<ab>/<sha256>`, one copy of
 * a file however many packages hold it. A file appears there only after its bytes hashed
 * to its name, were fsynced and renamed into place; uploads in progress live in
 * `<dir>/tmp/<sha256>.part`. The store deletes only files it named itself.
 */
export class ContentStore {
  readonly #present = new Map<string, number>();
  /** Hash state of a partial upload after the last request, so a resume need not re-read it. */
  readonly #hashes = new Map<string, { offset: number; hash: Hash }>();
  readonly #busy = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {}

  async open(): Promise<void> {
    await mkdir(join(this.dir, 'sha256'), { recursive: true });
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
    for (const prefix of await readdir(join(this.dir, 'sha256'))) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
      for (const name of await readdir(join(this.dir, 'sha256', prefix))) {
        if (!SHA256_RE.test(name) || name.slice(0, 2) !== prefix) continue;
        const st = await stat(join(this.dir, 'sha256', prefix, name)).catch(() => undefined);
        if (st?.isFile()) this.#present.set(name, st.size);
      }
    }
  }

  has(sha: string): boolean {
    return this.#present.has(sha);
  }

  /**
   * Whether the file is here, also when another core put it there (several cores share one
   * content directory): a file this store did not know of is looked for on disk once.
   */
  async knows(sha: string): Promise<boolean> {
    if (this.#present.has(sha)) return true;
    if (!/^[0-9a-f]{64}$/.test(sha)) return false;
    const st = await stat(this.pathOf(sha)).catch(() => undefined);
    if (!st?.isFile()) return false;
    this.#present.set(sha, st.size);
    return true;
  }

  /** Bytes held in content files. */
  get bytes(): number {
    let n = 0;
    for (const v of this.#present.values()) n += v;
    return n;
  }

  get files(): number {
    return this.#present.size;
  }

  pathOf(sha: string): string {
    return join(this.dir, 'sha256', sha.slice(0, 2), sha);
  }

  partialPath(sha: string): string {
    return join(this.dir, 'tmp', `${sha}.part`);
  }

  /** Bytes of a file received so far (its full size once it is in). */
  async received(sha: string): Promise<number> {
    const full = this.#present.get(sha);
    if (full !== undefined) return full;
    const st = await stat(this.partialPath(sha)).catch(() => undefined);
    return st?.size ?? 0;
  }

  async #commit(tmp: string, sha: string, size: number): Promise<void> {
    await fsyncPath(tmp);
    await mkdir(join(this.dir, 'sha256', sha.slice(0, 2)), { recursive: true });
    await rename(tmp, this.pathOf(sha));
    await fsyncPath(join(this.dir, 'sha256', sha.slice(0, 2))).catch(() => undefined);
    this.#present.set(sha, size);
  }

  /** Copies a local file in (the drop folder), hashing on the way. Returns its hash and size. */
  async importFile(src: string): Promise<{ sha256: string; size: number }> {
    const tmp = join(this.dir, 'tmp', `import-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        createReadStream(src, { highWaterMark: 1 << 20 }),
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            size += chunk.length;
            cb(null, chunk);
          },
        }),
        createWriteStream(tmp),
      );
      const sha256 = hash.digest('hex');
      if (this.#present.has(sha256)) await unlink(tmp);
      else await this.#commit(tmp, sha256, size);
      return { sha256, size };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Appends one upload request's body to the partial of `sha` at `offset` (which must be
   * what is held already), hashing on the way. Once `size` bytes are in, the hash is
   * checked: a match is committed, a mismatch deletes the partial and throws
   * `CORE_PACKAGE_HASH_MISMATCH`. More bytes than `size` throws
   * `CORE_PACKAGE_UPLOAD_TOO_LARGE` and deletes the partial; a body that ends early
   * keeps what arrived and throws `CORE_PACKAGE_UPLOAD_TRUNCATED`.
   */
  async upload(sha: string, size: number, offset: number, body: Readable, declaredLength: number | undefined): Promise<UploadResult> {
    if (this.#present.has(sha)) return { received: size, complete: true };
    if (this.#busy.has(sha)) {
      throw new OutpostError(PackageErrors.UPLOAD_BUSY, 'another upload of this file is in progress', { status: 409 });
    }
    this.#busy.add(sha);
    const partial = this.partialPath(sha);
    try {
      const held = (await stat(partial).catch(() => undefined))?.size ?? 0;
      if (offset !== held) {
        throw new OutpostError(PackageErrors.UPLOAD_OFFSET, `the upload must continue at offset ${held}, not ${offset}`, {
          status: 409,
          details: { received: held },
        });
      }
      if (declaredLength !== undefined && offset + declaredLength > size) {
        throw new OutpostError(PackageErrors.UPLOAD_TOO_LARGE, `${offset + declaredLength} bytes for a file of ${size} bytes`, {
          status: 413,
          details: { received: held, size },
        });
      }
      let hash: Hash;
      const cached = this.#hashes.get(sha);
      this.#hashes.delete(sha);
      if (cached && cached.offset === offset) hash = cached.hash;
      else {
        hash = createHash('sha256');
        if (offset > 0) for await (const chunk of createReadStream(partial, { end: offset - 1 }) as AsyncIterable<Buffer>) hash.update(chunk);
      }
      let received = offset;
      let oversized = false;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          if (received + chunk.length > size) {
            oversized = true;
            cb(new OutpostError(PackageErrors.UPLOAD_TOO_LARGE, `more than ${size} bytes sent for this file`, { status: 413 }));
            return;
          }
          received += chunk.length;
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      let diskError: NodeJS.ErrnoException | undefined;
      const out = createWriteStream(partial, { flags: 'a' });
      out.once('error', (err: NodeJS.ErrnoException) => (diskError = err));
      try {
        await pipeline(body, counter, out);
      } catch (err) {
        if (diskError) {
          // Our fault, not the client's: the partial may hold less than was counted.
          this.#hashes.delete(sha);
          this.log.error({ err: diskError, sha, partial }, 'content store: cannot write an upload');
          throw new OutpostError(PackageErrors.STORE_FAILED, `the content store cannot write (${diskError.code ?? diskError.message}); try again later`, {
            status: 507,
            cause: diskError,
            details: { received: (await stat(partial).catch(() => undefined))?.size ?? 0, size },
          });
        }
        if (oversized) {
          await rm(partial, { force: true });
          throw new OutpostError(PackageErrors.UPLOAD_TOO_LARGE, `more than ${size} bytes sent for a file of ${size} bytes`, {
            status: 413,
            details: { received: 0, size },
          });
        }
        const have = (await stat(partial).catch(() => undefined))?.size ?? 0;
        throw new OutpostError(PackageErrors.UPLOAD_TRUNCATED, `the upload ended after ${have} of ${size} bytes: ${(err as Error).message}`, {
          status: 400,
          cause: err,
          details: { received: have, size },
        });
      }
      if (declaredLength !== undefined && received - offset < declaredLength) {
        throw new OutpostError(PackageErrors.UPLOAD_TRUNCATED, `the upload ended after ${received} of ${size} bytes`, {
          status: 400,
          details: { received, size },
        });
      }
      if (received < size) {
        this.#hashes.set(sha, { offset: received, hash });
        return { received, complete: false };
      }
      const got = hash.digest('hex');
      if (got !== sha) {
        await rm(partial, { force: true });
        throw new OutpostError(PackageErrors.HASH_MISMATCH, `the file's bytes hash to ${got}, the manifest says ${sha}`, {
          status: 422,
          details: { received: 0, expected: sha, got },
        });
      }
      await this.#commit(partial, sha, size);
      return { received: size, complete: true };
    } finally {
      this.#busy.delete(sha);
    }
  }

  /** Deletes a content file and any partial of it; returns the bytes freed. */
  async remove(sha: string): Promise<number> {
    if (!SHA256_RE.test(sha)) return 0;
    let freed = 0;
    const size = this.#present.get(sha);
    this.#present.delete(sha);
    this.#hashes.delete(sha);
    if (size !== undefined) {
      await unlink(this.pathOf(sha)).then(
        () => {
          freed += size;
        },
        (err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') this.log.warn({ err, sha }, 'cannot delete a content file');
        },
      );
    }
    const partial = await stat(this.partialPath(sha)).catch(() => undefined);
    if (partial) {
      await rm(this.partialPath(sha), { force: true });
      freed += partial.size;
    }
    return freed;
  }

  /** Forgets a content file found missing or damaged (the next upload or import puts it back). */
  forget(sha: string): void {
    this.#present.delete(sha);
  }
}
