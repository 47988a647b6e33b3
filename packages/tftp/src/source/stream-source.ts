import type { Readable } from 'node:stream';
import type { ByteSource } from './byte-source.js';

/**
 * A source over a Readable (generated content of unknown size, netascii conversion).
 * Keeps only the bytes between the last released position and what has been read, and
 * pauses the stream when more than `highWater` bytes are buffered ahead.
 */
export class StreamSource implements ByteSource {
  private chunks: Buffer[] = [];
  /** Absolute position of chunks[0][0]. */
  private base = 0;
  private buffered = 0;
  private ended = false;
  private error: Error | undefined;
  private waiters: Array<() => void> = [];
  private released = 0;

  constructor(
    private readonly stream: Readable,
    readonly size: number | undefined = undefined,
    private readonly highWater = 1024 * 1024,
  ) {
    stream.on('data', (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (b.length === 0) return;
      this.chunks.push(b);
      this.buffered += b.length;
      if (this.base + this.buffered - this.released > this.highWater) stream.pause();
      this.wake();
    });
    stream.on('end', () => {
      this.ended = true;
      this.wake();
    });
    stream.on('error', (err: Error) => {
      this.error = err;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  copy(pos: number, dst: Buffer, dstOff: number, len: number): number {
    const end = this.base + this.buffered;
    if (pos < this.base) return -1; // released already: cannot happen for a well-behaved sender
    if (end < pos + len && !this.ended) return -1;
    let copied = 0;
    let at = this.base;
    for (const c of this.chunks) {
      const cEnd = at + c.length;
      if (cEnd > pos + copied && copied < len) {
        const from = pos + copied - at;
        const n = Math.min(c.length - from, len - copied);
        c.copy(dst, dstOff + copied, from, from + n);
        copied += n;
      }
      at = cEnd;
      if (copied === len) break;
    }
    return copied;
  }

  async load(pos: number, len: number): Promise<void> {
    for (;;) {
      if (this.error) throw this.error;
      if (this.ended || this.base + this.buffered >= pos + len) return;
      if (this.stream.isPaused()) this.stream.resume();
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  release(pos: number): void {
    this.released = pos;
    while (this.chunks.length > 0 && this.base + this.chunks[0]!.length <= pos) {
      const c = this.chunks.shift()!;
      this.base += c.length;
      this.buffered -= c.length;
    }
    if (this.stream.isPaused() && this.base + this.buffered - pos < this.highWater) this.stream.resume();
  }

  close(): void {
    this.chunks = [];
    this.stream.destroy();
    this.wake();
  }
}
