import { createHash, randomBytes } from 'node:crypto';
import { writeFile, open } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir, waitFor } from '@outpost/testing';
import { BufferPool, FileReadError, sendFileRange } from '../src/http/send-file.js';
import { TokenBucket } from '../src/http/throttle.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('BufferPool', () => {
  it('gives one download the largest chunk and shrinks the share as downloads add up, never below 64 KiB', () => {
    const pool = new BufferPool(MiB, 32 * MiB);
    pool.enter();
    expect(pool.chunkSize()).toBe(MiB);
    for (let i = 1; i < 64; i++) pool.enter();
    expect(pool.chunkSize()).toBe(256 * KiB);
    for (let i = 64; i < 200; i++) pool.enter();
    expect(pool.chunkSize()).toBe(64 * KiB);
    for (let i = 0; i < 200; i++) pool.leave();
    expect(pool.active).toBe(0);
  });

  it('reuses released buffers of the same size and keeps at most its budget idle', () => {
    const pool = new BufferPool(MiB, 4 * MiB);
    const a = pool.acquire(MiB);
    pool.release(a);
    expect(pool.acquire(MiB)).toBe(a);
    for (let i = 0; i < 6; i++) pool.release(Buffer.allocUnsafe(MiB));
    expect(pool.idleBytes).toBe(4 * MiB);
  });
});

describe('sendFileRange', () => {
  let dir: string;
  let server: Server;
  let url: string;
  const DATA = randomBytes(24 * MiB + 123);
  let results: Promise<number>[];
  let pool: BufferPool;

  beforeEach(async () => {
    dir = await tempDir('outpost-send-');
    await writeFile(join(dir, 'f'), DATA);
    results = [];
    pool = new BufferPool(MiB, 32 * MiB);
    server = createServer((req, res) => {
      const [start, end] = (req.url ?? '/0/0').slice(1).split('/').map(Number) as [number, number];
      res.writeHead(200, { 'content-length': end - start + 1 });
      results.push(
        (async () => {
          const fh = await open(join(dir, 'f'), 'r');
          try {
            return await sendFileRange(fh, res, start, end, pool, new TokenBucket(0));
          } finally {
            await fh.close();
          }
        })(),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await removeDir(dir);
  });

  const get = (path: string): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      request(`${url}${path}`, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });

  it('sends exactly the range asked for and counts every byte the socket took', async () => {
    expect(sha(await get(`/0/${DATA.length - 1}`))).toBe(sha(DATA));
    expect(await results[0]).toBe(DATA.length);
    const part = await get('/1000/1234567');
    expect(part.equals(DATA.subarray(1000, 1234568))).toBe(true);
    expect(await results[1]).toBe(1234568 - 1000);
    expect(pool.active).toBe(0);
  });

  it('stops reading when the client goes away and counts only what the socket took', async () => {
    await new Promise<void>((resolve, reject) => {
      request(`${url}/0/${DATA.length - 1}`, (res) => {
        let got = 0;
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got >= 256 * KiB) {
            res.destroy();
            resolve();
          }
        });
      })
        .on('error', reject)
        .end();
    });
    const sent = await results[0]!;
    expect(sent).toBeGreaterThanOrEqual(256 * KiB);
    expect(sent).toBeLessThan(DATA.length);
    expect(pool.active).toBe(0);
  });

  it('rejects with how many bytes were sent when the file ends before the range does', async () => {
    // The range runs 10 MiB past the file's end (as when the file shrank under us).
    const answered = get(`/0/${DATA.length + 10 * MiB - 1}`).catch(() => Buffer.alloc(0));
    await waitFor(() => results.length === 1);
    const err = await results[0]!.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FileReadError);
    const { bytesSent } = err as FileReadError;
    expect(bytesSent).toBeGreaterThan(0);
    expect(bytesSent).toBeLessThanOrEqual(DATA.length);
    expect((err as Error).message).toContain(`after ${bytesSent} bytes`);
    server.closeAllConnections();
    const got = await answered;
    expect(got.length).toBeLessThanOrEqual(bytesSent);
    expect(pool.active).toBe(0);
  });
});
