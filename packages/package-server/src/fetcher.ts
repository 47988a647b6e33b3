import { createHash } from 'node:crypto';
import { createReadStream, ftruncateSync, writeSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { OutpostError, type TokenBucket } from '@outpost/common';
import { getBody } from './body-client.js';
import { PackageServerErrors } from './errors.js';
import type { FileEntry, Source } from './store.js';

export interface FetchOptions {
  source: Source;
  file: FileEntry;
  partial: string;
  /** Sent to the core (`kind: 'core'`) only. */
  bearer: string;
  /** Our id, sent as `x-outpost-site-server` so sources can count who fetched. */
  selfId: string;
  timeoutMs: number;
  bucket: TokenBucket;
  signal: AbortSignal;
  onBytes(n: number): void;
  /**
   * A synchronous page-cache write the kernel held asleep for longer than this, while
   * `serving()`, switches the rest of the file to asynchronous writes (default
   * SLOW_WRITE_MS; negative: asynchronous from the start).
   */
  slowWriteMs?: number;
  /** True while downloads are being sent from this server (default: always). */
  serving?: () => boolean;
  /** Filled in when given: milliseconds until the answer's headers, the body's end and the fsync's end. */
  timings?: FetchTimings | undefined;
}

export interface FetchTimings {
  headersMs?: number;
  bodyMs?: number;
  syncMs?: number;
  /** Reads the response body arrived in (many small ones cost CPU per byte). */
  chunks?: number;
}

/** `a/b c.txt` → `a/b%20c.txt`: each segment encoded, slashes kept. */
export const encodePath = (path: string): string => path.split('/').map(encodeURIComponent).join('/');

/** A page-cache write held asleep longer than this means the disk is throttling writers. */
const SLOW_WRITE_MS = 20;
const READ_BYTES = 64 * 1024;
const RUN_BYTES = 64 * 1024;

/**
 * Downloads one file from a source into its partial file, resuming with `Range` when a
 * partial is already there (its bytes are re-hashed first), hashing every byte on the
 * way. Resolves with the bytes fetched over the network once the partial holds the whole
 * file, fsynced and matching the sha256; the caller renames it into place. A mismatch
 * deletes the partial and throws `PKGSRV_HASH_MISMATCH`; any other failure keeps what
 * arrived for the next attempt and throws `PKGSRV_SOURCE_FAILED`.
 *
 * Each piece of the body is hashed and written to the page cache synchronously, straight
 * from the socket's read buffer while it is still in the CPU's cache (getBody): a write
 * handed to the thread pool copies cold memory on another core, which cost more than the
 * hash. Should a write be held asleep in the kernel for over SLOW_WRITE_MS (it throttles
 * writers to a slow disk, or waits for a journal commit) while downloads are being
 * served, the rest of the file is written asynchronously, so staging does not keep
 * stalling the event loop those downloads share. A write that was merely slow because
 * other processes had the CPU (no voluntary context switch during it) does not count, nor
 * does a stall while nobody downloads from us (it delays no one): going async costs CPU
 * (a copy, a thread hop and a cold page-cache copy per piece), 15-20% more for ten
 * concurrent stagers on one box, where held writes are frequent.
 */
export async function fetchFile(o: FetchOptions): Promise<number> {
  const { file, partial } = o;
  const t0 = performance.now();
  const mark = (k: keyof FetchTimings): void => {
    if (o.timings) o.timings[k] = Math.round(performance.now() - t0);
  };
  const fh = await open(partial, 'a');
  try {
    let have = (await fh.stat()).size;
    if (have > file.size) {
      await fh.truncate(0);
      have = 0;
    }
    let hash = createHash('sha256');
    if (have > 0) for await (const chunk of createReadStream(partial, { end: have - 1, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) hash.update(chunk);
    let fetched = 0;
    if (have < file.size) {
      const url = new URL(`${o.source.url.replace(/\/+$/, '')}/${encodePath(file.path)}`);
      const headers: Record<string, string> = { 'x-outpost-site-server': o.selfId, 'accept-encoding': 'identity' };
      if (o.source.kind === 'core' && o.bearer) headers.authorization = `Bearer ${o.bearer}`;
      if (have > 0) headers.range = `bytes=${have}-`;
      let answered = false;
      const slowWriteMs = o.slowWriteMs ?? SLOW_WRITE_MS;
      let slow = slowWriteMs < 0;
      const runs = new AlignedWriter(fh.fd, have);
      const wrote = (n: number): void => {
        fetched += n;
        o.onBytes(n);
      };
      try {
        await getBody(url, { headers, timeoutMs: o.timeoutMs, signal: o.signal, readBytes: readBytesFor(o.bucket.rate) }, {
          head: (h) => {
            answered = true;
            mark('headersMs');
            if (h.status === 200 && have > 0) {
              // The source ignored the range: start over.
              ftruncateSync(fh.fd, 0);
              have = 0;
              hash = createHash('sha256');
              runs.restart(0);
            }
            const expected = have > 0 ? 206 : 200;
            if (h.status !== expected || (have > 0 && !(h.headers['content-range'] ?? '').startsWith(`bytes ${have}-`))) {
              if (h.status === 416) ftruncateSync(fh.fd, 0);
              throw new OutpostError(PackageServerErrors.SOURCE_FAILED, `${url.origin}: HTTP ${h.status} for ${file.path}`, { details: { status: h.status } });
            }
            if (have + h.length !== file.size) {
              throw new OutpostError(PackageServerErrors.SOURCE_FAILED, `${url.origin} sends ${have + h.length} bytes for ${file.path}, the manifest says ${file.size}`);
            }
          },
          body: (chunk) => {
            if (o.timings) o.timings.chunks = (o.timings.chunks ?? 0) + 1;
            hash.update(chunk);
            const n = chunk.length;
            const wait = o.bucket.take(n);
            if (!slow) {
              // Held writes matter only while downloads are served: watch them only then.
              const watch = o.serving?.() ?? true;
              const t = watch ? performance.now() : 0;
              const slept = watch ? process.resourceUsage().voluntaryContextSwitches : 0;
              runs.add(chunk);
              if (watch && performance.now() - t > slowWriteMs && process.resourceUsage().voluntaryContextSwitches > slept) {
                slow = true;
                runs.flush();
              }
              wrote(n);
              return wait > 0 ? sleep(wait) : undefined;
            }
            // The read buffer is reused: the thread pool writes a copy.
            return Promise.all([writeAll(fh, Buffer.from(chunk)), wait > 0 ? sleep(wait) : undefined]).then(() => wrote(n));
          },
        });
        runs.flush();
      } catch (cause) {
        try {
          runs.flush(); // keep what arrived for the next attempt
        } catch {
          // the write error is the download's error below, or a second symptom of it
        }
        if (cause instanceof OutpostError) throw cause;
        const message = answered ? `download of ${file.path} broke after ${have + fetched} of ${file.size} bytes: ${(cause as Error).message}` : `${url.origin}: ${(cause as Error).message}`;
        throw new OutpostError(PackageServerErrors.SOURCE_FAILED, message, { cause });
      }
      mark('bodyMs');
    }
    const got = hash.digest('hex');
    if (got !== file.sha256) {
      await fh.close();
      await rm(partial, { force: true });
      throw new OutpostError(PackageServerErrors.HASH_MISMATCH, `${file.path} from ${new URL(o.source.url).origin} hashes to ${got}, the manifest says ${file.sha256}`);
    }
    await fh.sync();
    mark('syncMs');
    return fetched;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * 64 KiB reads: ten concurrent 500 MiB downloads took 10.4-11.1 s with them against
 * 11.9-13.7 s with 256 KiB, 12.2-16 s with 1 MiB and 17-24 s with 16 KiB (the system time
 * of the page-cache copies grows with the piece: it leaves the CPU cache). A throttled
 * download reads at most about 1/8 s of its rate at a time, so it flows evenly.
 */
function readBytesFor(rate: number): number {
  return rate > 0 ? Math.min(READ_BYTES, Math.max(16 * 1024, Math.round(rate / 8))) : READ_BYTES;
}

/**
 * Writes a stream of pieces to a file in RUN_BYTES runs that start and end on RUN_BYTES
 * boundaries of the file (the first one ends on one), copying pieces into a buffer of its
 * own as needed. The kernel copies aligned 64 KiB writes into the page cache a third
 * faster than writes at the arbitrary offsets and lengths socket reads come in (500 MiB
 * from one process: 110-130 ms of system time against 170-220 ms), for a 64 KiB copy in
 * the CPU's cache per piece.
 */
export class AlignedWriter {
  readonly #fd: number;
  readonly #run = Buffer.allocUnsafeSlow(RUN_BYTES);
  /** Bytes held in the run, and how many of them are already in the file (a write that failed part way). */
  #fill = 0;
  #written = 0;
  #end: number;

  constructor(fd: number, position: number) {
    this.#fd = fd;
    this.#end = RUN_BYTES - (position % RUN_BYTES);
  }

  /** Drops what is held (the file was truncated) and starts over at `position`. */
  restart(position: number): void {
    this.#fill = 0;
    this.#written = 0;
    this.#end = RUN_BYTES - (position % RUN_BYTES);
  }

  /**
   * Writes (or holds) `chunk`: synchronous, whole runs only. A write error is thrown as
   * it comes; the file then holds an exact prefix of the bytes added, and a flush()
   * after it writes only what is not in the file yet.
   */
  add(chunk: Buffer): void {
    const n = chunk.length;
    let off = 0;
    while (off < n) {
      if (this.#fill === 0 && n - off >= this.#end) {
        // A whole run straight from the piece, no copy.
        for (let done = 0; done < this.#end; ) done += writeSync(this.#fd, chunk, off + done, this.#end - done);
        off += this.#end;
        this.#end = RUN_BYTES;
        continue;
      }
      const m = Math.min(this.#end - this.#fill, n - off);
      chunk.copy(this.#run, this.#fill, off, off + m);
      this.#fill += m;
      off += m;
      if (this.#fill === this.#end) this.flush();
    }
  }

  /** Writes what is held. */
  flush(): void {
    if (this.#fill === 0) return;
    while (this.#written < this.#fill) this.#written += writeSync(this.#fd, this.#run, this.#written, this.#fill - this.#written);
    this.#end = this.#end === this.#fill ? RUN_BYTES : this.#end - this.#fill;
    this.#fill = 0;
    this.#written = 0;
  }
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length; ) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
}
