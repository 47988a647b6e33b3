import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat, truncate } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OutpostError } from '@outpost/common';
import { PackageServerErrors } from './errors.js';
import type { FileEntry, Source } from './store.js';
import type { TokenBucket } from './throttle.js';

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
  /** Filled in when given: milliseconds until the answer's headers, the body's end and the fsync's end. */
  timings?: FetchTimings | undefined;
}

export interface FetchTimings {
  headersMs?: number;
  bodyMs?: number;
  syncMs?: number;
  /** Chunks the response body arrived in (many small ones cost CPU per byte). */
  chunks?: number;
}

/** `a/b c.txt` → `a/b%20c.txt`: each segment encoded, slashes kept. */
export const encodePath = (path: string): string => path.split('/').map(encodeURIComponent).join('/');

function get(url: URL, headers: Record<string, string>, timeoutMs: number, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'GET', headers, signal });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('response', (res) => {
      res.setTimeout?.(timeoutMs, () => res.destroy(new Error(`no bytes for ${timeoutMs} ms`)));
      resolve(res);
    });
    req.on('error', reject);
    req.end();
  });
}

async function fsync(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Downloads one file from a source into its partial file, resuming with `Range` when a
 * partial is already there (its bytes are re-hashed first), hashing every byte on the
 * way. Resolves with the bytes fetched over the network once the partial holds the whole
 * file, fsynced and matching the sha256; the caller renames it into place. A mismatch
 * deletes the partial and throws `PKGSRV_HASH_MISMATCH`; any other failure keeps what
 * arrived for the next attempt and throws `PKGSRV_SOURCE_FAILED`.
 */
export async function fetchFile(o: FetchOptions): Promise<number> {
  const { file, partial } = o;
  const t0 = performance.now();
  const mark = (k: keyof FetchTimings): void => {
    if (o.timings) o.timings[k] = Math.round(performance.now() - t0);
  };
  await (await open(partial, 'a')).close();
  let have = (await stat(partial).catch(() => undefined))?.size ?? 0;
  if (have > file.size) {
    await truncate(partial, 0);
    have = 0;
  }
  const hash = createHash('sha256');
  if (have > 0) for await (const chunk of createReadStream(partial, { end: have - 1, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) hash.update(chunk);
  let fetched = 0;
  if (have < file.size) {
    const url = new URL(`${o.source.url.replace(/\/+$/, '')}/${encodePath(file.path)}`);
    const headers: Record<string, string> = { 'x-outpost-site-server': o.selfId, 'accept-encoding': 'identity' };
    if (o.source.kind === 'core' && o.bearer) headers.authorization = `Bearer ${o.bearer}`;
    if (have > 0) headers.range = `bytes=${have}-`;
    let res: IncomingMessage;
    try {
      res = await get(url, headers, o.timeoutMs, o.signal);
    } catch (cause) {
      throw new OutpostError(PackageServerErrors.SOURCE_FAILED, `${url.origin}: ${(cause as Error).message}`, { cause });
    }
    mark('headersMs');
    if (res.statusCode === 200 && have > 0) {
      // The source ignored the range: start over.
      await truncate(partial, 0);
      have = 0;
      hash.destroy();
      return fetchFileFresh(o, res, mark);
    }
    const expectedStatus = have > 0 ? 206 : 200;
    if (res.statusCode !== expectedStatus || (have > 0 && !String(res.headers['content-range'] ?? '').startsWith(`bytes ${have}-`))) {
      res.resume();
      if (res.statusCode === 416) await truncate(partial, 0).catch(() => undefined);
      throw new OutpostError(PackageServerErrors.SOURCE_FAILED, `${url.origin}: HTTP ${res.statusCode} for ${file.path}`, { details: { status: res.statusCode } });
    }
    fetched = await into(res, partial, hash, file, have, o);
    mark('bodyMs');
  }
  return finish(o, hash.digest('hex'), fetched, mark);
}

async function fetchFileFresh(o: FetchOptions, res: IncomingMessage, mark: (k: keyof FetchTimings) => void): Promise<number> {
  const hash = createHash('sha256');
  const fetched = await into(res, o.partial, hash, o.file, 0, o);
  mark('bodyMs');
  return finish(o, hash.digest('hex'), fetched, mark);
}

/**
 * Streams a response into the partial file, hashing every byte on the way, in one stage:
 * chunks are hashed as they arrive and written with one `writev` per batch (the stream
 * buffers up to 1 MiB while a write is in flight), so there is no extra stream hop per
 * chunk and far fewer system calls than a write per socket read.
 */
async function into(res: IncomingMessage, partial: string, hash: ReturnType<typeof createHash>, file: FileEntry, have: number, o: FetchOptions): Promise<number> {
  let total = have;
  let fetched = 0;
  const fh = await open(partial, 'a');
  const sink = new Writable({
    highWaterMark: 1 << 20,
    writev(chunks, cb) {
      const bufs: Buffer[] = [];
      let n = 0;
      if (o.timings) o.timings.chunks = (o.timings.chunks ?? 0) + chunks.length;
      for (const { chunk } of chunks as { chunk: Buffer }[]) {
        if (total + n + chunk.length > file.size) {
          cb(new OutpostError(PackageServerErrors.SOURCE_FAILED, `the source sent more than ${file.size} bytes for ${file.path}`));
          return;
        }
        hash.update(chunk);
        bufs.push(chunk);
        n += chunk.length;
      }
      fh.writev(bufs).then(
        ({ bytesWritten }) => {
          if (bytesWritten !== n) {
            cb(new Error(`short write: ${bytesWritten} of ${n} bytes`));
            return;
          }
          total += n;
          fetched += n;
          o.onBytes(n);
          cb();
        },
        (err: Error) => cb(err),
      );
    },
  });
  try {
    if (o.bucket.rate > 0) await pipeline(res, o.bucket.stream(), sink, { signal: o.signal });
    else await pipeline(res, sink, { signal: o.signal });
  } catch (cause) {
    throw new OutpostError(PackageServerErrors.SOURCE_FAILED, `download of ${file.path} broke after ${total} of ${file.size} bytes: ${(cause as Error).message}`, { cause });
  } finally {
    await fh.close().catch(() => undefined);
  }
  if (total !== file.size) {
    throw new OutpostError(PackageServerErrors.SOURCE_FAILED, `the source sent ${total} of ${file.size} bytes for ${file.path}`);
  }
  return fetched;
}

async function finish(o: FetchOptions, got: string, fetched: number, mark: (k: keyof FetchTimings) => void): Promise<number> {
  if (got !== o.file.sha256) {
    await rm(o.partial, { force: true });
    throw new OutpostError(PackageServerErrors.HASH_MISMATCH, `${o.file.path} from ${new URL(o.source.url).origin} hashes to ${got}, the manifest says ${o.file.sha256}`);
  }
  await fsync(o.partial);
  mark('syncMs');
  return fetched;
}
