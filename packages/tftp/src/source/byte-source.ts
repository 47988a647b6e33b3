/**
 * What a sending transfer reads from. The hot path is synchronous: `copy()` either copies
 * the bytes now or returns -1, and the sender then awaits `load()` for that range once.
 */
export interface ByteSource {
  /** Total bytes on the wire when known up front (answers tsize); undefined for streams. */
  readonly size: number | undefined;
  /**
   * Copies bytes [pos, pos+len) into dst at dstOff. Returns the number copied (less than
   * len only at the end of the data), or -1 when the range is not in memory yet.
   */
  copy(pos: number, dst: Buffer, dstOff: number, len: number): number;
  /**
   * Optional fast path: block `block`'s whole DATA packet at this blksize (header with the
   * block number mod 65536, then its data), ready-made and shared: callers send it and
   * never write to it. Undefined when the source has none in memory: use copy().
   */
  packet?(block: number, blksize: number): Buffer | undefined;
  /** Resolves once [pos, pos+len) (or the end of data) can be copied. Rejects on I/O error. */
  load(pos: number, len: number): Promise<void>;
  /** Bytes before `pos` will never be asked for again. */
  release(pos: number): void;
  close(): void;
}

/** A source over one Buffer (generated content). */
export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(private readonly data: Buffer) {
    this.size = data.length;
  }
  copy(pos: number, dst: Buffer, dstOff: number, len: number): number {
    const end = Math.min(this.data.length, pos + len);
    if (end <= pos) return 0;
    return this.data.copy(dst, dstOff, pos, end);
  }
  load(): Promise<void> {
    return Promise.resolve();
  }
  release(): void {}
  close(): void {}
}
