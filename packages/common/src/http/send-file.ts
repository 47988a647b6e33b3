import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { TokenBucket } from './throttle.js';

const MIN_CHUNK = 64 * 1024;

/**
 * Read buffers for serving, reused instead of allocated per chunk: free lists per
 * power-of-two size (64 KiB … `maxChunk`). The size handed out shrinks as more
 * downloads run at once, so that the buffers of all downloads (two each) stay within
 * `budget` bytes: with 32 MiB, one download reads 1 MiB at a time, 200 read 64 KiB.
 */
export class BufferPool {
  readonly #free = new Map<number, Buffer[]>();
  #active = 0;
  #idle = 0;

  constructor(
    readonly maxChunk: number,
    readonly budget: number,
  ) {}

  /** Downloads in progress (each sizes its buffers from this when it starts a read). */
  get active(): number {
    return this.#active;
  }

  /** Bytes kept in free lists. */
  get idleBytes(): number {
    return this.#idle;
  }

  enter(): void {
    this.#active++;
  }

  leave(): void {
    this.#active = Math.max(0, this.#active - 1);
  }

  /** The chunk size for a download now: a power of two in [64 KiB, maxChunk]. */
  chunkSize(): number {
    const share = this.budget / (2 * Math.max(1, this.#active));
    let size = MIN_CHUNK;
    while (size * 2 <= Math.min(share, this.maxChunk)) size *= 2;
    return Math.min(size, Math.max(MIN_CHUNK, this.maxChunk));
  }

  acquire(size: number): Buffer {
    const list = this.#free.get(size);
    const b = list?.pop();
    if (b) {
      this.#idle -= b.length;
      return b;
    }
    return Buffer.allocUnsafeSlow(size);
  }

  /** Returns a buffer once nothing refers to it any more (its write completed). */
  release(b: Buffer): void {
    // Keep up to the budget idle for reuse (buffers left for the garbage collector linger
    // until a major collection, which is what drove RSS up); beyond it, let them go.
    if (this.#idle + b.length > this.budget) return;
    let list = this.#free.get(b.length);
    if (!list) this.#free.set(b.length, (list = []));
    list.push(b);
    this.#idle += b.length;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Reading the file failed while its bytes were being sent; `bytesSent` had reached the socket by then. */
export class FileReadError extends Error {
  constructor(
    readonly bytesSent: number,
    cause: unknown,
  ) {
    super(`reading the file failed after ${bytesSent} bytes were sent: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'FileReadError';
  }
}

/**
 * Sends bytes `[start, end]` of an open file as the body of `res` (headers already
 * written) with a read loop over pooled buffers: read a chunk with `pread`, write it,
 * and while the socket takes it (until the write's callback: the bytes are in the
 * kernel's send buffer) read the next chunk into a second buffer. Memory per download is
 * two chunks, whose size shrinks as more downloads run at once. Resolves with the bytes
 * the socket accepted (all of them unless the client went away); rejects only when the
 * file cannot be read, with a FileReadError that says how many bytes were sent before.
 * Without `bucket`, as fast as the socket takes it.
 */
export async function sendFileRange(fh: FileHandle, res: ServerResponse, start: number, end: number, pool: BufferPool, bucket?: TokenBucket): Promise<number> {
  let pos = start;
  let sent = 0;
  let closed = false;
  let onClosed: (() => void) | undefined;
  const closedP = new Promise<void>((r) => (onClosed = r));
  const onClose = (): void => {
    closed = true;
    onClosed?.();
  };
  res.on('close', onClose);
  // Bulk transfer: let the kernel coalesce segments.
  res.socket?.setNoDelay(false);
  pool.enter();
  const spare: Buffer[] = [];
  // Start small and double per chunk up to the download's share: a burst of new
  // downloads never allocates big buffers it would give back a moment later.
  let grow = MIN_CHUNK;
  const take = (): Buffer => {
    const want = Math.min(grow, pool.chunkSize());
    grow = Math.min(grow * 2, pool.maxChunk);
    let b = spare.pop();
    if (b && b.length !== want) {
      pool.release(b);
      b = undefined;
    }
    return b ?? pool.acquire(want);
  };
  /** Reads the next chunk (from `pos`) into a buffer; undefined at the end. */
  const readNext = async (): Promise<{ buf: Buffer; n: number } | undefined> => {
    if (pos > end) return undefined;
    const buf = take();
    const at = pos;
    const len = Math.min(buf.length, end - at + 1);
    pos += len;
    const { bytesRead: n } = await fh.read(buf, 0, len, at);
    if (n !== len) throw new Error(`the file ended at ${at + n}, before ${end + 1}`);
    return { buf, n };
  };
  let next: Promise<{ buf: Buffer; n: number } | undefined> | undefined;
  try {
    let cur = await readNext();
    while (cur && !closed) {
      if (bucket && bucket.rate > 0) {
        const wait = bucket.take(cur.n);
        if (wait > 0) await Promise.race([sleep(wait), closedP]);
        if (closed) break;
      }
      const { buf, n } = cur;
      const written = new Promise<boolean>((resolve) => {
        res.write(n === buf.length ? buf : buf.subarray(0, n), (err) => resolve(!err));
      });
      // Read ahead while the socket takes this chunk.
      next = readNext();
      next.catch(() => undefined);
      const ok = await Promise.race([written, closedP.then(() => false)]);
      cur = undefined;
      // On failure the socket may still refer to the buffer: never reuse it.
      if (!ok) break;
      sent += n;
      spare.push(buf);
      cur = await next;
      next = undefined;
    }
    if (!closed) await Promise.race([new Promise<void>((resolve) => res.end(() => resolve())), closedP]);
  } catch (err) {
    throw new FileReadError(sent, err);
  } finally {
    pool.leave();
    res.off('close', onClose);
    // A read still in flight finishes before its buffer may be reused.
    const pending = await next?.catch(() => undefined);
    if (pending) pool.release(pending.buf);
    for (const b of spare) pool.release(b);
  }
  return sent;
}
