import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { tempDir, removeDir, waitFor, e2eGate } from '@outpost/testing';
import { tftpGet, type TftpServer } from '../../src/index.js';
import { probePool, startServer, pattern, writeFiles, sha256, rrq, ack, opcodeOf, blockOf, ackToEnd } from './helpers.js';

// The same server with `workers`: the listening socket, the resolver and the events stay
// here; reads of files and resolver bytes run in transfer worker threads.

const run = promisify(execFile);
const gate = e2eGate('tftp real clients (workers)', { commands: ['curl'] });

let root: string;
let server: TftpServer | undefined;
const probes = probePool();
const probe = probes.open;
beforeEach(async () => {
  root = await tempDir('tftp-workers-root-');
});
afterEach(async () => {
  await probes.closeAll();
  await server?.stop();
  server = undefined;
  await removeDir(root);
});

describe('transfer workers', () => {
  it('serves files byte for byte from two workers, events and counters on the main thread', async () => {
    const files = { empty: Buffer.alloc(0), one: Buffer.from([42]), k512: pattern(512 * 7), odd: pattern(100_003) };
    await writeFiles(root, files);
    const s = await startServer({ root, workers: 2 });
    server = s.server;
    const seen = new Map<number, string[]>();
    const push = (id: number, what: string): void => void seen.set(id, [...(seen.get(id) ?? []), what]);
    s.server.on('start', (t) => push(t.id, 'start'));
    s.server.on('options', (t, o) => push(t.id, `options ${o.blksize}`));
    s.server.on('done', (t, r) => push(t.id, `done ${r.bytes}`));
    let n = 0;
    for (const [name, data] of Object.entries(files)) {
      for (const o of [{}, { blksize: 1468, tsize: true }, { blksize: 512, windowsize: 8 }, { blksize: 8 }]) {
        const r = await tftpGet({ host: '127.0.0.1', port: s.port, filename: name, ...o });
        expect(sha256(r.data!), `${name} ${JSON.stringify(o)}`).toBe(sha256(data));
        if ('tsize' in o) expect(r.tsize, name).toBe(data.length === 0 ? undefined : data.length);
        n++;
      }
    }
    await waitFor(() => s.server.counters.completed === n);
    const total = Object.values(files).reduce((a, b) => a + 4 * b.length, 0);
    expect(s.server.counters).toMatchObject({ reads: n, completed: n, failed: 0, active: 0, bytesSent: total });
    for (const events of seen.values()) {
      expect(events).toHaveLength(3);
      expect(events[0]).toBe('start');
      expect(events[2]).toMatch(/^done /);
    }
  });

  it('spreads concurrent reads over the workers, each reading a hot file from disk once', async () => {
    const data = pattern(3 * 1024 * 1024 + 5);
    await writeFiles(root, { img: data });
    const s = await startServer({ root, workers: 2, cacheChunkBytes: 1024 * 1024 });
    server = s.server;
    const results = await Promise.all(
      Array.from({ length: 12 }, () => tftpGet({ host: '127.0.0.1', port: s.port, filename: 'img', blksize: 1468, windowsize: 16 })),
    );
    for (const r of results) expect(sha256(r.data!)).toBe(sha256(data));
    // 4 chunks, read once by each of the two workers' caches: both workers served reads
    await waitFor(() => s.server.counters.completed === 12);
    expect(s.server.counters.active).toBe(0);
    expect(s.server.cacheStats.misses).toBe(8);
  });

  it('keeps the resolver on the main thread: bytes and files go to a worker, streams are served where made', async () => {
    await writeFiles(root, { 'disk.bin': pattern(9000, 5) });
    const calls: string[] = [];
    const s = await startServer(
      { workers: 1 },
      {
        resolver: (path, ctx) => {
          calls.push(path);
          if (path === 'boot.ipxe') return { data: Buffer.from(`#!ipxe\necho ${ctx.remoteAddress}\n`) };
          if (path === 'alias.bin') return { file: join(root, 'disk.bin') };
          if (path === 'stream') return { stream: Readable.from([Buffer.alloc(3000, 1), Buffer.alloc(2000, 2)]) };
          return null;
        },
      },
    );
    server = s.server;
    const get = (filename: string) => tftpGet({ host: '127.0.0.1', port: s.port, filename, blksize: 1024, tsize: true });
    const ipxe = await get('boot.ipxe');
    expect(ipxe.data!.toString()).toBe('#!ipxe\necho 127.0.0.1\n');
    expect(ipxe.tsize).toBe(ipxe.bytes);
    expect(sha256((await get('alias.bin')).data!)).toBe(sha256(pattern(9000, 5)));
    const st = await get('stream');
    expect(st.data).toEqual(Buffer.concat([Buffer.alloc(3000, 1), Buffer.alloc(2000, 2)]));
    await expect(get('missing')).rejects.toMatchObject({ code: 'TFTP_FILE_NOT_FOUND' });
    expect(calls).toEqual(['boot.ipxe', 'alias.bin', 'stream', 'missing']);
    await waitFor(() => s.server.counters.completed === 3);
    expect(s.server.counters).toMatchObject({ completed: 3, notFound: 1, active: 0 });
  });

  it("answers a stranger on a worker's transfer port with ERROR 5 and finishes the transfer", async () => {
    await writeFiles(root, { f: pattern(2000) });
    const s = await startServer({ root, workers: 2 });
    server = s.server;
    const client = await probe();
    const stranger = await probe();
    await client.send(rrq('f'), s.port);
    const d1 = await client.next();
    expect(opcodeOf(d1.data)).toBe(3);
    await stranger.send(ack(1), d1.port);
    const e = await stranger.next();
    expect([opcodeOf(e.data), e.data.readUInt16BE(2)]).toEqual([5, 5]);
    expect(await ackToEnd(client, d1, { samePort: true })).toEqual(pattern(2000));
    await waitFor(() => s.server.counters.completed === 1);
    expect(s.server.counters.unknownTid).toBe(1);
  });

  it("serves a worker's concurrent reads from one data port, and a client's next read from the same port again", async () => {
    await writeFiles(root, { f: pattern(2000) });
    const s = await startServer({ root, workers: 1 });
    server = s.server;
    const a = await probe();
    const b = await probe();
    await a.send(rrq('f'), s.port);
    const a1 = await a.next();
    await b.send(rrq('f'), s.port);
    const b1 = await b.next();
    expect(b1.port).toBe(a1.port);
    expect(await ackToEnd(a, a1, { samePort: true })).toEqual(pattern(2000));
    expect(await ackToEnd(b, b1, { samePort: true })).toEqual(pattern(2000));
    await waitFor(() => s.server.counters.completed === 2);
    await a.send(rrq('f'), s.port);
    const a2 = await a.next();
    expect(a2.port).toBe(a1.port);
    expect(await ackToEnd(a, a2, { samePort: true })).toEqual(pattern(2000));
    await waitFor(() => s.server.counters.completed === 3);
    expect(s.server.counters).toMatchObject({ failed: 0, unknownTid: 0 });
  });

  it('tells apart clients on the same port at different addresses on one data port, and a stranger there', async () => {
    await writeFiles(root, { f: pattern(3000) });
    const s = await startServer({ root, workers: 1 });
    server = s.server;
    const a = await probe('127.0.0.2');
    const b = await probe('127.0.0.3', a.port);
    const c = await probe('127.0.0.4', a.port);
    await a.send(rrq('f'), s.port);
    const a1 = await a.next();
    await b.send(rrq('f'), s.port);
    const b1 = await b.next();
    expect(b1.port).toBe(a1.port);
    await c.send(ack(1), a1.port);
    const e = await c.next();
    expect([opcodeOf(e.data), e.data.readUInt16BE(2)]).toEqual([5, 5]);
    // The first attached (later in the port's chain) ends first, then the other.
    expect(await ackToEnd(a, a1, { samePort: true })).toEqual(pattern(3000));
    await waitFor(() => s.server.counters.completed === 1);
    expect(await ackToEnd(b, b1, { samePort: true })).toEqual(pattern(3000));
    await waitFor(() => s.server.counters.completed === 2);
    // Both gone from the port: a late ACK from either is a stranger's.
    await a.send(ack(6), a1.port);
    expect(opcodeOf((await a.next()).data)).toBe(5);
    await waitFor(() => s.server.counters.unknownTid === 2); // counted in the worker, reported in a batch
    expect(s.server.counters.failed).toBe(0);
  });

  it('frees the slot of a client that vanished after the retry limit, and ends quietly on ERROR 8 after an OACK', async () => {
    await writeFiles(root, { f: pattern(5000) });
    const s = await startServer({ root, workers: 1, timeoutMs: 40, retries: 2, maxTransfers: 1 });
    server = s.server;
    const ended: string[] = [];
    s.server.on('failed', (_t, r) => ended.push(`failed ${r.reason}`));
    s.server.on('aborted', (_t, r) => ended.push(`aborted ${r.reason}`));
    const c = await probe();
    await c.send(rrq('f'), s.port);
    const sent = [await c.next(), await c.next(), await c.next()];
    expect(sent.map((d) => blockOf(d.data))).toEqual([1, 1, 1]);
    await waitFor(() => ended.length > 0, { timeoutMs: 2000 });
    expect(ended).toEqual(['failed timeout']);
    expect(s.server.counters).toMatchObject({ active: 0, failed: 1, retransmits: 2 });

    const p = await probe();
    await p.send(rrq('f', { tsize: 0 }), s.port);
    const oack = await p.next();
    expect(opcodeOf(oack.data)).toBe(6);
    await p.send(Buffer.from('\0\x05\0\x08tsize probe\0', 'latin1'), oack.port);
    await waitFor(() => ended.length > 1);
    expect(ended).toEqual(['failed timeout', 'aborted option-negotiation']);
    expect(s.server.counters).toMatchObject({ optionAborts: 1, failed: 1, active: 0 });
  });

  it('stop ends transfers running in workers with ERROR 0 and a server-stopped event', async () => {
    await writeFiles(root, { f: pattern(512 * 50) });
    const s = await startServer({ root, workers: 2, timeoutMs: 5000 });
    server = s.server;
    const failed: string[] = [];
    s.server.on('failed', (_t, r) => failed.push(r.reason));
    const c = await probe();
    await c.send(rrq('f'), s.port);
    await c.next();
    await s.server.stop();
    expect(failed).toEqual(['server-stopped']);
    const e = await c.next();
    expect(opcodeOf(e.data)).toBe(5);
    expect(s.server.counters.active).toBe(0);
  });
});

describe.runIf(gate.run)('transfer workers with a real client', () => {
  it('curl: 8 concurrent downloads at blksize 1468 and one at 512, identical bytes', async () => {
    const data = pattern(2 * 1024 * 1024 + 333, 11);
    await writeFiles(root, { 'img.bin': data });
    const out = await tempDir('tftp-workers-out-');
    try {
      const s = await startServer({ root, workers: 2 });
      server = s.server;
      const url = `tftp://127.0.0.1:${s.port}/img.bin`;
      await Promise.all([
        ...Array.from({ length: 8 }, (_, i) => run('curl', ['-sS', '--max-time', '30', '--tftp-blksize', '1468', '-o', join(out, `c${i}`), url])),
        run('curl', ['-sS', '--max-time', '30', '-o', join(out, 'c512'), url]),
      ]);
      for (const f of [...Array.from({ length: 8 }, (_, i) => `c${i}`), 'c512']) expect(sha256(await readFile(join(out, f))), f).toBe(sha256(data));
      await waitFor(() => s.server.counters.completed === 9);
      expect(s.server.counters).toMatchObject({ completed: 9, failed: 0, active: 0, bytesSent: 9 * data.length });
    } finally {
      await removeDir(out);
    }
  }, 60_000);
});
