import { open, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import type { ByteSource } from './byte-source.js';

/*
 * The shared read cache. A hot file (same real path, size and mtime) is read from disk
 * once in fixed-size chunks, and every transfer of it copies blocks out of those chunks:
 * 200 clients booting the same image cause one pass over the disk, not 200. The chunks of
 * all files share one LRU byte budget. Each file is opened once, however many transfers
 * read it. A transfer pins the chunks around its window so an eviction never stalls it.
 */

interface FileEntry {
  key: string;
  path: string;
  size: number;
  handle: FileHandle | undefined;
  opening: Promise<FileHandle> | undefined;
  refs: number;
  chunks: Map<number, Buffer>;
  pending: Map<number, Promise<Buffer>>;
}

export interface ReadCacheStats {
  files: number;
  chunks: number;
  bytes: number;
  hits: number;
  misses: number;
  diskReads: number;
}

export class ReadCache {
  private readonly files = new Map<string, FileEntry>();
  /** LRU over "fileKey\0chunkIndex", oldest first. */
  private readonly lru = new Map<string, { entry: FileEntry; index: number; bytes: number }>();
  private bytes = 0;
  readonly stats: ReadCacheStats = { files: 0, chunks: 0, bytes: 0, hits: 0, misses: 0, diskReads: 0 };

  constructor(
    readonly maxBytes: number,
    readonly chunkBytes: number,
  ) {}

  /** Opens a cached source over a regular file whose realpath, size and mtime are known. */
  acquire(path: string, size: number, mtimeMs: number): FileSource {
    const key = `${path}\0${size}\0${mtimeMs}`;
    let entry = this.files.get(key);
    if (!entry) {
      entry = { key, path, size, handle: undefined, opening: undefined, refs: 0, chunks: new Map(), pending: new Map() };
      this.files.set(key, entry);
    }
    entry.refs++;
    this.updateStats();
    return new FileSource(this, entry);
  }

  /** @internal */
  chunk(entry: FileEntry, index: number): Buffer | undefined {
    const c = entry.chunks.get(index);
    if (c) {
      const k = `${entry.key}\0${index}`;
      const node = this.lru.get(k);
      if (node) {
        this.lru.delete(k);
        this.lru.set(k, node);
      }
      this.stats.hits++;
    }
    return c;
  }

  /** @internal Reads a chunk from disk, once, however many transfers ask at the same time. */
  loadChunk(entry: FileEntry, index: number): Promise<Buffer> {
    const have = entry.chunks.get(index);
    if (have) return Promise.resolve(have);
    const pending = entry.pending.get(index);
    if (pending) return pending;
    this.stats.misses++;
    const p = this.readChunk(entry, index).finally(() => {
      entry.pending.delete(index);
      if (entry.refs === 0) this.closeIdle(entry);
    });
    entry.pending.set(index, p);
    return p;
  }

  private async readChunk(entry: FileEntry, index: number): Promise<Buffer> {
    const handle = await this.handleOf(entry);
    const pos = index * this.chunkBytes;
    const len = Math.max(0, Math.min(this.chunkBytes, entry.size - pos));
    const buf = Buffer.allocUnsafeSlow(len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await handle.read(buf, got, len - got, pos + got);
      this.stats.diskReads++;
      if (bytesRead === 0) break; // file shrank under us: serve what is there
      got += bytesRead;
    }
    const chunk = got === len ? buf : buf.subarray(0, got);
    if (this.maxBytes > 0 && this.files.get(entry.key) === entry) {
      entry.chunks.set(index, chunk);
      this.lru.set(`${entry.key}\0${index}`, { entry, index, bytes: chunk.length });
      this.bytes += chunk.length;
      this.evict();
    }
    this.updateStats();
    return chunk;
  }

  private handleOf(entry: FileEntry): Promise<FileHandle> {
    if (entry.handle) return Promise.resolve(entry.handle);
    if (!entry.opening) {
      entry.opening = open(entry.path, constants.O_RDONLY | constants.O_NOFOLLOW).then(
        (h) => {
          entry.opening = undefined;
          if (entry.refs === 0) {
            void h.close().catch(() => {});
          } else entry.handle = h;
          return h;
        },
        (err: unknown) => {
          entry.opening = undefined;
          throw err;
        },
      );
    }
    return entry.opening;
  }

  private evict(): void {
    for (const [k, node] of this.lru) {
      if (this.bytes <= this.maxBytes) break;
      this.lru.delete(k);
      node.entry.chunks.delete(node.index);
      this.bytes -= node.bytes;
      this.dropIfIdle(node.entry);
    }
  }

  private dropIfIdle(entry: FileEntry): void {
    if (entry.refs === 0 && entry.chunks.size === 0 && entry.pending.size === 0 && this.files.get(entry.key) === entry) {
      this.files.delete(entry.key);
    }
  }

  /** @internal */
  release(entry: FileEntry): void {
    entry.refs--;
    if (entry.refs === 0) this.closeIdle(entry);
    this.updateStats();
  }

  private closeIdle(entry: FileEntry): void {
    if (entry.pending.size > 0) return; // the last read closes it
    const h = entry.handle;
    entry.handle = undefined;
    if (h) void h.close().catch(() => {});
    this.dropIfIdle(entry);
  }

  /** Drops every chunk and closes every idle file. */
  clear(): void {
    for (const node of this.lru.values()) node.entry.chunks.delete(node.index);
    this.lru.clear();
    this.bytes = 0;
    for (const e of [...this.files.values()]) this.dropIfIdle(e);
    this.updateStats();
  }

  private updateStats(): void {
    this.stats.files = this.files.size;
    this.stats.chunks = this.lru.size;
    this.stats.bytes = this.bytes;
  }
}

type Entry = FileEntry;

export class FileSource implements ByteSource {
  readonly size: number;
  private readonly pinned = new Map<number, Buffer>();
  private releasedBelow = 0;
  private closed = false;

  constructor(
    private readonly cache: ReadCache,
    private readonly entry: Entry,
  ) {
    this.size = entry.size;
  }

  copy(pos: number, dst: Buffer, dstOff: number, len: number): number {
    const end = Math.min(this.size, pos + len);
    if (end <= pos) return 0;
    const cb = this.cache.chunkBytes;
    let at = pos;
    while (at < end) {
      const index = Math.floor(at / cb);
      let chunk = this.pinned.get(index);
      if (!chunk) {
        chunk = this.cache.chunk(this.entry, index);
        if (!chunk) return -1;
        this.pinned.set(index, chunk);
        this.prefetch(index + 1);
      }
      const from = at - index * cb;
      const n = Math.min(chunk.length - from, end - at);
      if (n <= 0) break; // short chunk: the file shrank
      chunk.copy(dst, dstOff + (at - pos), from, from + n);
      at += n;
    }
    return at - pos;
  }

  async load(pos: number, len: number): Promise<void> {
    const cb = this.cache.chunkBytes;
    const end = Math.min(this.size, pos + len);
    const loads: Array<Promise<void>> = [];
    for (let index = Math.floor(pos / cb); index * cb < end; index++) {
      if (this.pinned.has(index)) continue;
      loads.push(
        this.cache.loadChunk(this.entry, index).then((c) => {
          if (!this.closed) this.pinned.set(index, c);
        }),
      );
    }
    await Promise.all(loads);
  }

  /** Starts reading the next chunk while this one is being sent, so a transfer rarely waits on disk. */
  private prefetch(index: number): void {
    if (this.closed || index * this.cache.chunkBytes >= this.size || this.pinned.has(index)) return;
    this.cache.loadChunk(this.entry, index).then(
      (c) => {
        if (!this.closed) this.pinned.set(index, c);
      },
      () => {}, // a real read of this chunk reports the error
    );
  }

  release(pos: number): void {
    const first = Math.floor(pos / this.cache.chunkBytes);
    if (first === this.releasedBelow) return; // called per ACK: stay allocation-free
    this.releasedBelow = first;
    for (const index of this.pinned.keys()) if (index < first) this.pinned.delete(index);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pinned.clear();
    this.cache.release(this.entry);
  }
}
