import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { TokenBucket } from './throttle.js';

const MIN_CHUNK = 64 * 1024;

/**
 * Read buffers for serving, reused instead of allocated per chunk: free lists per
 * power-of-two size (64 KiB … `maxChunk`). The size handed out shrinks as more
 * downloads run at once, so that the buffers of all downloads (one each) stay within
 * `budget` bytes: with 32 MiB, one download reads 1 MiB at a time, 200 read 128 KiB.
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
    const share = this.budget / Math.max(1, this.#active);
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
    // Keep a quarter of the budget idle for reuse; the rest go to the garbage collector.
    if (this.#idle + b.length > this.budget / 4) return;
    let list = this.#free.get(b.length);
    if (!list) this.#free.set(b.length, (list = []));
    list.push(b);
    this.#idle += b.length;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Sends bytes `[start, end]` of an open file as the body of `res` (headers already
 * written) with a read loop over one pooled buffer: read a chunk with `pread`, write it,
 * wait until the socket took it (the write's callback: the bytes are in the kernel's send
 * buffer, which keeps the connection busy while the next chunk is read), read the next
 * into the same buffer. Memory per download is one chunk, whose size shrinks as more
 * downloads run at once. Resolves with the bytes the socket accepted (all of them unless
 * the client went away); rejects only when the file cannot be read.
 */
export async function sendFileRange(fh: FileHandle, res: ServerResponse, start: number, end: number, pool: BufferPool, bucket: TokenBucket): Promise<number> {
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
  let buf: Buffer | undefined;
  try {
    while (pos <= end && !closed) {
      const want = pool.chunkSize();
      if (!buf || buf.length > want) {
        if (buf) pool.release(buf);
        buf = pool.acquire(want);
      }
      const { bytesRead: n } = await fh.read(buf, 0, Math.min(buf.length, end - pos + 1), pos);
      if (n === 0) throw new Error(`the file ended at ${pos}, before ${end + 1}`);
      if (closed) break;
      pos += n;
      if (bucket.rate > 0) {
        const wait = bucket.take(n);
        if (wait > 0) await Promise.race([sleep(wait), closedP]);
        if (closed) break;
      }
      const written = new Promise<boolean>((resolve) => {
        res.write(n === buf!.length ? buf! : buf!.subarray(0, n), (err) => resolve(!err));
      });
      const ok = await Promise.race([written, closedP.then(() => false)]);
      if (!ok) {
        // The socket may still refer to the buffer: never reuse it.
        buf = undefined;
        break;
      }
      sent += n;
    }
    if (!closed) await Promise.race([new Promise<void>((resolve) => res.end(() => resolve())), closedP]);
  } finally {
    pool.leave();
    res.off('close', onClose);
    if (buf) pool.release(buf);
  }
  return sent;
}
