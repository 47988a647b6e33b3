import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, writeSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '@outpost/testing';
import { issue, makeCa } from '@outpost/testing/pki';
import { getBody, parseHead } from '../src/body-client.js';
import { PackageServerErrors } from '../src/errors.js';
import { AlignedWriter, fetchFile, type FetchOptions, type FetchTimings } from '../src/fetcher.js';
import { TokenBucket } from '@outpost/common';

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const DATA = randomBytes(3 * MiB + 12_345);

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Serves DATA with Range support (as a package server does), unless a test swaps the handler. */
const rangeServing: Handler = (req, res) => {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m) {
    const from = Number(m[1]);
    res.writeHead(206, { 'content-length': DATA.length - from, 'content-range': `bytes ${from}-${DATA.length - 1}/${DATA.length}` });
    res.end(DATA.subarray(from));
    return;
  }
  res.writeHead(200, { 'content-length': DATA.length });
  res.end(DATA);
};

async function listen(server: Server | ReturnType<typeof createNetServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('fetchFile', () => {
  let dir: string;
  let server: Server;
  let port: number;
  let handler: Handler;
  const seen: IncomingMessage[] = [];
  const extra: { close(): unknown }[] = [];

  beforeEach(async () => {
    dir = await tempDir('outpost-fetcher-');
    handler = rangeServing;
    seen.length = 0;
    server = createServer((req, res) => {
      seen.push(req);
      handler(req, res);
    });
    port = await listen(server);
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    for (const s of extra.splice(0)) s.close();
    await removeDir(dir);
  });

  const options = (over: Partial<FetchOptions> = {}): FetchOptions & { counted: number[] } => {
    const counted: number[] = [];
    return {
      counted,
      source: { url: `http://127.0.0.1:${port}/packages/p1`, kind: 'codebase' },
      file: { path: 'dir/a b.bin', size: DATA.length, sha256: sha(DATA) },
      partial: join(dir, 'a.part'),
      bearer: 'secret',
      selfId: 'ps-1',
      timeoutMs: 5_000,
      bucket: new TokenBucket(0),
      signal: new AbortController().signal,
      onBytes: (n) => counted.push(n),
      ...over,
    };
  };

  it('downloads a whole file, hashed and written, with our id and without the bearer for a codebase', async () => {
    const timings: FetchTimings = {};
    const o = options({ timings });
    expect(await fetchFile(o)).toBe(DATA.length);
    expect(sha(await readFile(o.partial))).toBe(sha(DATA));
    expect(o.counted.reduce((a, b) => a + b, 0)).toBe(DATA.length);
    expect(timings.chunks).toBeGreaterThan(0);
    expect(timings.syncMs).toBeGreaterThanOrEqual(timings.bodyMs ?? Infinity);
    expect(seen[0]!.url).toBe('/packages/p1/dir/a%20b.bin');
    expect(seen[0]!.headers['x-outpost-site-server']).toBe('ps-1');
    expect(seen[0]!.headers.authorization).toBeUndefined();
  });

  it('sends the bearer to the core', async () => {
    await fetchFile(options({ source: { url: `http://127.0.0.1:${port}/api/v1/packages/p1/files`, kind: 'core' } }));
    expect(seen[0]!.headers.authorization).toBe('Bearer secret');
  });

  it('resumes a partial file with Range and fetches only the rest', async () => {
    const o = options();
    const have = MiB + 7;
    await writeFile(o.partial, DATA.subarray(0, have));
    expect(await fetchFile(o)).toBe(DATA.length - have);
    expect(seen[0]!.headers.range).toBe(`bytes=${have}-`);
    expect(sha(await readFile(o.partial))).toBe(sha(DATA));
  });

  it('starts over when the source ignores the Range', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': DATA.length });
      res.end(DATA);
    };
    const o = options();
    await writeFile(o.partial, DATA.subarray(0, 1000));
    expect(await fetchFile(o)).toBe(DATA.length);
    expect(sha(await readFile(o.partial))).toBe(sha(DATA));
  });

  it('rejects bytes that do not hash to the manifest and deletes the partial', async () => {
    const o = options({ file: { path: 'a.bin', size: DATA.length, sha256: sha(Buffer.from('other')) } });
    await expect(fetchFile(o)).rejects.toMatchObject({ code: PackageServerErrors.HASH_MISMATCH });
    await expect(stat(o.partial)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a source that announces another size than the manifest, before writing a byte', async () => {
    const o = options({ file: { path: 'a.bin', size: DATA.length - 1, sha256: sha(DATA.subarray(1)) } });
    await expect(fetchFile(o)).rejects.toMatchObject({ code: PackageServerErrors.SOURCE_FAILED, message: expect.stringContaining('the manifest says') });
    expect((await stat(o.partial)).size).toBe(0);
  });

  it('answers an error status with SOURCE_FAILED and the status', async () => {
    handler = (_req, res) => {
      res.writeHead(404, { 'content-length': 0 });
      res.end();
    };
    await expect(fetchFile(options())).rejects.toMatchObject({ code: PackageServerErrors.SOURCE_FAILED, details: { status: 404 } });
  });

  it('keeps what arrived when the connection breaks, and the next attempt resumes from there', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': DATA.length });
      res.write(DATA.subarray(0, MiB), () => setTimeout(() => res.socket?.destroy(), 50));
    };
    const o = options();
    await expect(fetchFile(o)).rejects.toMatchObject({ code: PackageServerErrors.SOURCE_FAILED, message: expect.stringContaining('broke after') });
    // Every byte that arrived is in the partial (held bytes of an unfinished run too).
    const kept = (await stat(o.partial)).size;
    expect(kept).toBe(MiB);
    handler = rangeServing;
    expect(await fetchFile(o)).toBe(DATA.length - kept);
    expect(sha(await readFile(o.partial))).toBe(sha(DATA));
  });

  it('writes through the thread pool when page-cache writes are slow, with the same bytes', async () => {
    const o = options({ slowWriteMs: -1 });
    expect(await fetchFile(o)).toBe(DATA.length);
    expect(sha(await readFile(o.partial))).toBe(sha(DATA));
  });

  it('keeps to the bandwidth limit', async () => {
    const small = DATA.subarray(0, MiB);
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': small.length });
      res.end(small);
    };
    const t = performance.now();
    // 512 KiB/s with a one-second burst: 1 MiB cannot take less than about a second.
    await fetchFile(options({ file: { path: 'a.bin', size: small.length, sha256: sha(small) }, bucket: new TokenBucket(512 * 1024) }));
    expect(performance.now() - t).toBeGreaterThan(900);
  });

  it('stops when aborted and when the source says nothing for the timeout', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': DATA.length });
      res.write(DATA.subarray(0, 1000));
    };
    const ac = new AbortController();
    const o = options({ signal: ac.signal, onBytes: () => ac.abort(new Error('unassigned')) });
    await expect(fetchFile(o)).rejects.toMatchObject({ code: PackageServerErrors.SOURCE_FAILED, message: expect.stringContaining('unassigned') });
    handler = () => undefined;
    await expect(fetchFile(options({ timeoutMs: 200 }))).rejects.toMatchObject({ code: PackageServerErrors.SOURCE_FAILED, message: expect.stringContaining('no answer in 200 ms') });
  });

  it('refuses a chunked body, a head that never ends and garbage, with a clear error', async () => {
    const raw = createNetServer((s: Socket) => {
      s.once('data', (req) => {
        const path = /^GET (\S+)/.exec(req.toString('latin1'))?.[1] ?? '';
        if (path.endsWith('/chunked')) s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
        else if (path.endsWith('/huge-head')) s.end(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}`);
        else s.end('SSH-2.0-OpenSSH\r\n\r\n');
      });
    });
    extra.push(raw);
    const rawPort = await listen(raw);
    const at = (path: string): FetchOptions => options({ source: { url: `http://127.0.0.1:${rawPort}`, kind: 'codebase' }, file: { path, size: 5, sha256: sha(Buffer.from('hello')) } });
    await expect(fetchFile(at('chunked'))).rejects.toMatchObject({ code: PackageServerErrors.SOURCE_FAILED, message: expect.stringContaining('Transfer-Encoding chunked') });
    await expect(fetchFile(at('huge-head'))).rejects.toMatchObject({ message: expect.stringContaining('head over') });
    await expect(fetchFile(at('other'))).rejects.toMatchObject({ message: expect.stringContaining('not an HTTP/1.x answer') });
  });
});

describe('AlignedWriter', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('outpost-aligned-');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('writes every piece in order, from any start, in whole 64 KiB runs but the first and the last', async () => {
    let seed = 7;
    const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (const start of [0, 1, 4096, 65_535, 65_536, 100_000]) {
      const path = join(dir, `f-${start}`);
      const fd = openSync(path, 'a');
      writeSync(fd, DATA, 0, start);
      const w = new AlignedWriter(fd, start);
      const sizes: number[] = [];
      let pos = start;
      while (pos < DATA.length) {
        const n = Math.min(DATA.length - pos, [1, 17, 4096, 65_536, 65_537, 200_000][rnd(6)]! + rnd(3000));
        const before = fstatSync(fd).size;
        w.add(DATA.subarray(pos, pos + n));
        const after = fstatSync(fd).size;
        if (after > before) sizes.push(after);
        pos += n;
      }
      w.flush();
      closeSync(fd);
      expect(sha(await readFile(path))).toBe(sha(DATA));
      // The file only ever grew to 64 KiB boundaries before the final flush.
      expect(sizes.every((x) => x % 65_536 === 0)).toBe(true);
      expect(sizes.length).toBeGreaterThan(10);
    }
  });

  it('drops what it holds on restart (the file was truncated) and flushes a partial run where it stands', async () => {
    const path = join(dir, 'r');
    const fd = openSync(path, 'a');
    const w = new AlignedWriter(fd, 0);
    w.add(DATA.subarray(0, 1000));
    expect(fstatSync(fd).size).toBe(0);
    w.restart(0);
    w.add(DATA.subarray(0, 70_000));
    expect(fstatSync(fd).size).toBe(65_536);
    w.flush();
    expect(fstatSync(fd).size).toBe(70_000);
    // After a partial flush the next run still ends on a boundary.
    w.add(DATA.subarray(70_000, 140_000));
    expect(fstatSync(fd).size).toBe(131_072);
    w.flush();
    closeSync(fd);
    expect(sha(await readFile(path))).toBe(sha(DATA.subarray(0, 140_000)));
  });
});

describe('getBody', () => {
  it('downloads over HTTPS with the CA it is given, and refuses a server it cannot verify', async () => {
    const ca = await makeCa('core-a');
    const leaf = await issue(ca, { id: 'ps-1', kind: 'site-server', names: ['127.0.0.1'] });
    const server = createHttpsServer({ cert: leaf.cert, key: leaf.key }, (_req, res) => {
      res.writeHead(200, { 'content-length': DATA.length });
      res.end(DATA);
    });
    const port = await listen(server);
    try {
      const h = createHash('sha256');
      const url = new URL(`https://127.0.0.1:${port}/x`);
      const n = await getBody(url, { headers: {}, timeoutMs: 5_000, signal: new AbortController().signal, tls: { ca: ca.pem } }, { head: () => undefined, body: (c) => void h.update(c) });
      expect(n).toBe(DATA.length);
      expect(h.digest('hex')).toBe(sha(DATA));
      await expect(getBody(url, { headers: {}, timeoutMs: 5_000, signal: new AbortController().signal }, { head: () => undefined, body: () => undefined })).rejects.toThrow(/certificate/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('reads a head that arrives in pieces, and a body that shares the head’s read', async () => {
    const body = Buffer.from('0123456789');
    const raw = createNetServer((s: Socket) => {
      s.once('data', () => {
        const bytes = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nX-A: 1\r\nx-a: 2\r\n\r\n`), body]);
        s.write(bytes.subarray(0, 7));
        setTimeout(() => s.write(bytes.subarray(7, 30)), 20);
        setTimeout(() => s.end(bytes.subarray(30)), 40);
      });
    });
    const port = await listen(raw);
    try {
      const pieces: Buffer[] = [];
      let headers: Record<string, string> = {};
      const n = await getBody(new URL(`http://127.0.0.1:${port}/`), { headers: {}, timeoutMs: 5_000, signal: new AbortController().signal }, { head: (h) => void (headers = h.headers), body: (c) => void pieces.push(Buffer.from(c)) });
      expect(n).toBe(body.length);
      expect(Buffer.concat(pieces).equals(body)).toBe(true);
      expect(headers['x-a']).toBe('1, 2');
    } finally {
      raw.close();
    }
  });

  it('parses status lines and headers, and rejects what is not HTTP/1.x', () => {
    expect(parseHead('HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 1-2/3')).toEqual({ status: 206, headers: { 'content-range': 'bytes 1-2/3' } });
    expect(parseHead('HTTP/1.0 200')).toEqual({ status: 200, headers: {} });
    expect(() => parseHead('HTTP/2 200')).toThrow(/not an HTTP\/1.x answer/);
    expect(() => parseHead('HTTP/1.1 200 OK\r\nno colon here')).toThrow(/malformed header/);
  });
});
