import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prng } from '@outpost/testing';
import { ReadCache, type FileSource } from '../src/source/read-cache.js';

/** The DATA packet RFC 1350 puts on the wire for block b of `data` at blksize. */
function expected(data: Buffer, b: number, blksize: number): Buffer {
  const body = data.subarray((b - 1) * blksize, Math.min(data.length, b * blksize));
  return Buffer.concat([Buffer.from([0, 3, (b >>> 8) & 0xff, b & 0xff]), body]);
}

describe('ReadCache packet chunks', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tftp-read-cache-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function file(name: string, size: number): Promise<{ path: string; data: Buffer }> {
    const next = prng(size);
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = Math.floor(next() * 256);
    const path = join(dir, name);
    await writeFile(path, data);
    return { path, data };
  }

  async function loaded(cache: ReadCache, path: string, size: number): Promise<FileSource> {
    const s = cache.acquire(path, size, 1);
    await s.load(0, size);
    return s;
  }

  it('hands out every block as its DATA packet, across byte-chunk boundaries, ending short or empty', async () => {
    for (const size of [0, 1, 1468, 1468 * 7, 20_000, 4096 * 3 + 5]) {
      const { path, data } = await file(`f${size}`, size);
      const cache = new ReadCache(1 << 20, 4096);
      const s = await loaded(cache, path, size);
      const blocks = Math.floor(size / 1468) + 1;
      for (let b = 1; b <= blocks; b++) expect(s.packet(b, 1468), `size ${size} block ${b}`).toEqual(expected(data, b, 1468));
      expect(s.packet(blocks + 1, 1468)).toBeUndefined();
      s.close();
    }
  });

  it('puts block numbers on the wire mod 65536 (block 65536 is 0)', async () => {
    const size = 8 * 65_536 + 3;
    const { path, data } = await file('wrap', size);
    const s = await loaded(new ReadCache(4 << 20, 4096), path, size);
    const p = s.packet(65_536, 8)!;
    expect(p.readUInt16BE(2)).toBe(0);
    expect(p.subarray(4)).toEqual(data.subarray(8 * 65_535, 8 * 65_536));
    expect(s.packet(65_537, 8)!.readUInt16BE(2)).toBe(1);
    s.close();
  });

  it('shares one packet between the transfers of a file at the same blksize, not across blksizes', async () => {
    const { path } = await file('shared', 50_000);
    const cache = new ReadCache(1 << 20, 8192);
    const a = await loaded(cache, path, 50_000);
    const b = await loaded(cache, path, 50_000);
    expect(a.packet(9, 1468)).toBe(b.packet(9, 1468));
    expect(a.packet(9, 512)).not.toBe(a.packet(9, 1468));
    a.close();
    b.close();
  });

  it('has no packet for bytes not in memory yet, then builds it once they are loaded', async () => {
    const { path, data } = await file('lazy', 30_000);
    const cache = new ReadCache(1 << 20, 4096);
    const s = cache.acquire(path, 30_000, 1);
    expect(s.packet(10, 1468)).toBeUndefined();
    await s.load(0, 30_000);
    expect(s.packet(10, 1468)).toEqual(expected(data, 10, 1468));
    s.close();
  });

  it('counts packet chunks against the byte budget and stays correct while evicting', async () => {
    const size = 200_000;
    const { path, data } = await file('evict', size);
    const cache = new ReadCache(16_384, 4096);
    const s = cache.acquire(path, size, 1);
    const blocks = Math.floor(size / 1468) + 1;
    for (let b = 1; b <= blocks; b++) {
      await s.load((b - 1) * 1468, 1468 * 4);
      expect(s.packet(b, 1468)).toEqual(expected(data, b, 1468));
      s.release((b - 1) * 1468);
      expect(cache.stats.bytes).toBeLessThanOrEqual(16_384);
    }
    s.close();
  });
});
