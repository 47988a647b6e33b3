import { open, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import type { ByteSource } from './byte-source.js';
import { DATA_HEADER, writeDataHeader } from '../packet/data.js';

/*
 * The shared read cache. A hot file (same real path, size and mtime) is read from disk
 * once in fixed-size chunks, and every transfer of it copies blocks out of those chunks:
 * 200 clients booting the same image cause one pass over the disk, not 200. The chunks of
 * all files share one LRU byte budget. Each file is opened once, however many transfers
 * read it. A transfer pins the chunks around its window so an eviction never stalls it.
 *
 * Packet chunks: for each blksize in use, the file is also kept as ready-made DATA packets
 * (header + data, the block number mod 65536), built once from the byte chunks and shared
 * by every transfer at that blksize, so sending a block is handing dgram a view that
 * already exists: no copy, no header write, no allocation per block. A packet chunk
 * holds floor(chunkBytes / blksize) blocks and counts against the same LRU budget.
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
  /** Packet chunks by blksize, then by packet-chunk index: one view per DATA packet. */
  packets: Map<number, Map<number, Buffer[]>>;
}

interface LruNode {
  entry: FileEntry;
  index: number;
  bytes: number;
  /** 0 for a byte chunk, else the blksize of a packet chunk. */
  blksize: number;
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
  private readonly lru = new Map<string, LruNode>();
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
      entry = { key, path, size, handle: undefined, opening: undefined, refs: 0, chunks: new Map(), pending: new Map(), packets: new Map() };
      this.files.set(key, entry);
    }
    entry.refs++;
    this.updateStats();
    return new FileSource(this, entry);
  }

  /** @internal */
  chunk(entry: FileEntry, index: number): Buffer | undefined {
    const c = entry.chunks.get(index);
    if (c) this.hit(`${entry.key}\0${index}`);
    return c;
  }

  /** A cache hit on `k`: counted, and `k` moves to the young end of the LRU. */
  private hit(k: string): void {
    const node = this.lru.get(k);
    if (node) {
      this.lru.delete(k);
      this.lru.set(k, node);
    }
    this.stats.hits++;
  }

  /** Blocks per packet chunk at this blksize. */
  blocksPerPacketChunk(blksize: number): number {
    return Math.max(1, Math.floor(this.chunkBytes / blksize));
  }

  /** @internal A packet chunk if cached. */
  packetChunk(entry: FileEntry, blksize: number, index: number): Buffer[] | undefined {
    const p = entry.packets.get(blksize)?.get(index);
    if (p) this.hit(`${entry.key}\0${blksize}:${index}`);
    return p;
  }

  /** @internal Keeps a packet chunk a transfer built (if the cache keeps anything). */
  storePacketChunk(entry: FileEntry, blksize: number, index: number, views: Buffer[], bytes: number): void {
    if (this.maxBytes <= 0 || this.files.get(entry.key) !== entry) return;
    let byIndex = entry.packets.get(blksize);
    if (!byIndex) {
      byIndex = new Map();
      entry.packets.set(blksize, byIndex);
    }
    byIndex.set(index, views);
    this.lru.set(`${entry.key}\0${blksize}:${index}`, { entry, index, bytes, blksize });
    this.bytes += bytes;
    this.evict();
    this.updateStats();
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
      this.lru.set(`${entry.key}\0${index}`, { entry, index, bytes: chunk.length, blksize: 0 });
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
      this.forget(node);
      this.bytes -= node.bytes;
      this.dropIfIdle(node.entry);
    }
  }

  private forget(node: LruNode): void {
    if (node.blksize === 0) {
      node.entry.chunks.delete(node.index);
      return;
    }
    const byIndex = node.entry.packets.get(node.blksize);
    byIndex?.delete(node.index);
    if (byIndex?.size === 0) node.entry.packets.delete(node.blksize);
  }

  private dropIfIdle(entry: FileEntry): void {
    if (entry.refs === 0 && entry.chunks.size === 0 && entry.packets.size === 0 && entry.pending.size === 0 && this.files.get(entry.key) === entry) {
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
    for (const node of this.lru.values()) this.forget(node);
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
  /** The packet chunk in use: its blksize, its first block and one view per block. */
  private pBlksize = 0;
  private pFirst = 0;
  private pViews: Buffer[] = [];

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

  packet(block: number, blksize: number): Buffer | undefined {
    const i = block - this.pFirst;
    if (blksize === this.pBlksize && i >= 0 && i < this.pViews.length) return this.pViews[i];
    return this.packetSlow(block, blksize);
  }

  /** Finds block's packet chunk in the cache or builds it from the byte chunks (undefined when they are not in memory). */
  private packetSlow(block: number, blksize: number): Buffer | undefined {
    const blocks = Math.floor(this.size / blksize) + 1; // the last one is short, maybe empty
    if (this.closed || block < 1 || block > blocks) return undefined;
    const cache = this.cache;
    const per = cache.blocksPerPacketChunk(blksize);
    const index = Math.floor((block - 1) / per);
    const first = index * per + 1;
    let views = cache.packetChunk(this.entry, blksize, index);
    if (!views) {
      const last = Math.min(blocks, first + per - 1);
      const dataBytes = Math.min(this.size, last * blksize) - (first - 1) * blksize;
      if (!this.inMemory((first - 1) * blksize, dataBytes)) return undefined;
      const buf = Buffer.allocUnsafeSlow((last - first + 1) * DATA_HEADER + dataBytes);
      const built: Buffer[] = [];
      let at = 0;
      for (let b = first; b <= last; b++) {
        const n = this.copy((b - 1) * blksize, buf, at + DATA_HEADER, blksize);
        if (n < 0) return undefined;
        const pkt = buf.subarray(at, at + DATA_HEADER + n);
        writeDataHeader(pkt, b & 0xffff);
        built.push(pkt);
        at += DATA_HEADER + n;
      }
      views = built;
      cache.storePacketChunk(this.entry, blksize, index, views, buf.length);
    }
    this.pBlksize = blksize;
    this.pFirst = first;
    this.pViews = views;
    return views[block - first];
  }

  /** Pins the byte chunks of [pos, pos+len); false (and a read started) if one is not in memory. */
  private inMemory(pos: number, len: number): boolean {
    const cb = this.cache.chunkBytes;
    let ok = true;
    for (let index = Math.floor(pos / cb); index * cb < pos + len; index++) {
      if (this.pinned.has(index)) continue;
      const chunk = this.cache.chunk(this.entry, index);
      if (chunk) this.pinned.set(index, chunk);
      else {
        this.prefetch(index);
        ok = false;
      }
    }
    return ok;
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
    this.pViews = [];
    this.cache.release(this.entry);
  }
}
