import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdir, symlink, readFile, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { tempDir, removeDir, prng, waitFor } from '@outpost/testing';
import { tftpGet, tftpPut, TftpErrors, type TftpServer } from '../../src/index.js';
import { probePool, startServer, pattern, writeFiles, sha256, rrq, ack, opcodeOf, blockOf, endsOf, ackToEnd } from './helpers.js';

let root: string;
let outside: string;
let server: TftpServer | undefined;
const probes = probePool();
const probe = probes.open;

beforeEach(async () => {
  root = await tempDir('tftp-root-');
  outside = await tempDir('tftp-outside-');
});
afterEach(async () => {
  await probes.closeAll();
  await server?.stop();
  server = undefined;
  await removeDir(root);
  await removeDir(outside);
});

describe('reads', () => {
  it('serves 0, 1, 512·k and odd-sized files byte for byte, with and without options', async () => {
    const files = { empty: Buffer.alloc(0), one: Buffer.from([42]), k512: pattern(512 * 7), odd: pattern(100_003) };
    await writeFiles(root, files);
    const s = await startServer({ root });
    server = s.server;
    for (const [name, data] of Object.entries(files)) {
      for (const o of [{}, { blksize: 1468 }, { blksize: 512, windowsize: 8 }, { blksize: 8 }]) {
        const r = await tftpGet({ host: '127.0.0.1', port: s.port, filename: name, ...o });
        expect(sha256(r.data!), `${name} ${JSON.stringify(o)}`).toBe(sha256(data));
      }
    }
    await waitFor(() => s.server.counters.completed === 16);
    expect(s.server.counters).toMatchObject({ completed: 16, failed: 0, active: 0 });
  });

  it('answers tsize and clamps blksize and windowsize in the OACK', async () => {
    await writeFiles(root, { f: pattern(10_000) });
    const s = await startServer({ root, maxBlksize: 1024, maxWindowsize: 4 });
    server = s.server;
    const r = await tftpGet({ host: '127.0.0.1', port: s.port, filename: 'f', blksize: 65464, windowsize: 64, tsize: true });
    expect(r).toMatchObject({ blksize: 1024, windowsize: 4, tsize: 10_000, bytes: 10_000 });
  });

  it('wraps block numbers to 0 after 65535 on a file over 32 MiB at blksize 512', async () => {
    const data = pattern(32 * 1024 * 1024 + 700, 7);
    await writeFiles(root, { big: data });
    const s = await startServer({ root });
    server = s.server;
    const r = await tftpGet({ host: '127.0.0.1', port: s.port, filename: 'big', blksize: 512, windowsize: 64 });
    expect(r.bytes).toBe(data.length);
    expect(sha256(r.data!)).toBe(sha256(data));
  });

  it('converts netascii on the fly', async () => {
    await writeFiles(root, { t: Buffer.from('line1\nline2\rend\n') });
    const s = await startServer({ root });
    server = s.server;
    const p = await probe();
    await p.send(rrq('t', {}, 'netascii'), s.port);
    const d = await p.next();
    expect(d.data.subarray(4).toString('latin1')).toBe('line1\r\nline2\r\0end\r\n');
    const r = await tftpGet({ host: '127.0.0.1', port: s.port, filename: 't', mode: 'netascii' });
    expect(r.data!.toString()).toBe('line1\nline2\rend\n');
  });

  it('serves generated content from the resolver, per client address, before the root', async () => {
    await writeFiles(root, { 'boot.ipxe': Buffer.from('from disk'), other: Buffer.from('disk only') });
    const s = await startServer(
      { root },
      {
        resolver: (path, ctx) =>
          path === 'boot.ipxe'
            ? { data: Buffer.from(`#!ipxe\necho ${ctx.remoteAddress}\n`) }
            : path === 'stream'
              ? { stream: Readable.from([Buffer.alloc(3000, 1), Buffer.alloc(2000, 2)]) }
              : null,
      },
    );
    server = s.server;
    const get = (filename: string) => tftpGet({ host: '127.0.0.1', port: s.port, filename, blksize: 1024 });
    expect((await get('boot.ipxe')).data!.toString()).toBe('#!ipxe\necho 127.0.0.1\n');
    expect((await get('other')).data!.toString()).toBe('disk only');
    const st = await get('stream');
    expect(st.data).toEqual(Buffer.concat([Buffer.alloc(3000, 1), Buffer.alloc(2000, 2)]));
    expect(st.tsize).toBeUndefined();
  });

  it('reads a hot file from disk once for many concurrent clients', async () => {
    const data = pattern(3 * 1024 * 1024 + 5);
    await writeFiles(root, { img: data });
    const s = await startServer({ root, cacheChunkBytes: 1024 * 1024 });
    server = s.server;
    const results = await Promise.all(
      Array.from({ length: 20 }, () => tftpGet({ host: '127.0.0.1', port: s.port, filename: 'img', blksize: 1468, windowsize: 16 })),
    );
    for (const r of results) expect(sha256(r.data!)).toBe(sha256(data));
    expect(s.server.cacheStats.misses).toBe(4); // 4 chunks, each read once
  });

  it('streams a download into a Writable instead of a Buffer', async () => {
    const data = pattern(70_000);
    await writeFiles(root, { f: data });
    const s = await startServer({ root });
    server = s.server;
    const parts: Buffer[] = [];
    const { Writable } = await import('node:stream');
    const to = new Writable({ write: (chunk: Buffer, _e, cb) => (parts.push(chunk), cb()) });
    const r = await tftpGet({ host: '127.0.0.1', port: s.port, filename: 'f', blksize: 1468, windowsize: 4, to });
    expect(r.data).toBeUndefined();
    expect(Buffer.concat(parts)).toEqual(data);
  });

  it('emits start, options and done with bytes, duration and retransmits', async () => {
    await writeFiles(root, { f: pattern(5000) });
    const s = await startServer({ root });
    server = s.server;
    const seen: string[] = [];
    let done: { bytes: number; durationMs: number; retransmits: number } | undefined;
    s.server.on('start', (t) => seen.push(`start ${t.kind} ${t.filename}`));
    s.server.on('options', (_t, o) => seen.push(`options ${o.blksize} ${o.windowsize} ${o.tsize}`));
    s.server.on('done', (_t, r) => {
      seen.push('done');
      done = r;
    });
    await tftpGet({ host: '127.0.0.1', port: s.port, filename: 'f', blksize: 1000, tsize: true });
    await waitFor(() => done);
    expect(seen).toEqual(['start read f', 'options 1000 1 5000', 'done']);
    expect(done).toMatchObject({ bytes: 5000, retransmits: 0 });
    expect(done!.durationMs).toBeGreaterThan(0);
  });
});

describe('misbehaving peers', () => {
  it('answers a stranger on the transfer port with ERROR 5 and finishes the transfer', async () => {
    await writeFiles(root, { f: pattern(2000) });
    const s = await startServer({ root });
    server = s.server;
    const client = await probe();
    const stranger = await probe();
    await client.send(rrq('f'), s.port);
    const d1 = await client.next();
    expect(opcodeOf(d1.data)).toBe(3);
    await stranger.send(ack(1), d1.port);
    const e = await stranger.next();
    expect([opcodeOf(e.data), e.data.readUInt16BE(2)]).toEqual([5, 5]);
    expect(await ackToEnd(client, d1)).toEqual(pattern(2000));
    await waitFor(() => s.server.counters.completed === 1);
    expect(s.server.counters.unknownTid).toBe(1);
  });

  it('never resends on duplicate ACKs (no Sorcerer\'s Apprentice)', async () => {
    await writeFiles(root, { f: pattern(512 * 4 + 1) });
    const s = await startServer({ root, timeoutMs: 2000 });
    server = s.server;
    const c = await probe();
    await c.send(rrq('f'), s.port);
    const d1 = await c.next();
    await c.send(ack(1), d1.port);
    await c.send(ack(1), d1.port);
    await c.send(ack(1), d1.port);
    const after = await c.collect(150);
    expect(after.map((d) => blockOf(d.data))).toEqual([2]);
  });

  it('ignores ACK floods and ACKs for blocks never sent, then completes', async () => {
    const data = pattern(512 * 10 + 3);
    await writeFiles(root, { f: data });
    const s = await startServer({ root, timeoutMs: 2000 });
    server = s.server;
    const c = await probe();
    await c.send(rrq('f', { windowsize: 2 }), s.port);
    const oack = await c.next();
    expect(opcodeOf(oack.data)).toBe(6);
    await c.send(ack(0), oack.port);
    const w1 = [await c.next(), await c.next()];
    expect(w1.map((d) => blockOf(d.data))).toEqual([1, 2]);
    for (let i = 0; i < 200; i++) await c.send(ack(i % 2 === 0 ? 0 : 40000 + i), oack.port);
    expect(await c.collect(100)).toEqual([]);
    const got = [w1[0]!.data.subarray(4), w1[1]!.data.subarray(4)];
    let lastBlock = 2;
    for (;;) {
      await c.send(ack(lastBlock), oack.port);
      const batch = [await c.next()];
      if (batch[0]!.data.length === 516) batch.push(await c.next());
      for (const d of batch) got.push(d.data.subarray(4));
      lastBlock = blockOf(batch[batch.length - 1]!.data);
      if (batch[batch.length - 1]!.data.length < 516) break;
    }
    await c.send(ack(lastBlock), oack.port);
    expect(Buffer.concat(got)).toEqual(data);
    await waitFor(() => s.server.counters.completed === 1);
    expect(s.server.counters.strayAcks).toBeGreaterThan(0);
    expect(s.server.counters.duplicateAcks).toBeGreaterThan(0);
  });

  it('goes back to the first lost block when an ACK covers only part of a window', async () => {
    await writeFiles(root, { f: pattern(512 * 20) });
    const s = await startServer({ root, timeoutMs: 2000 });
    server = s.server;
    const c = await probe();
    await c.send(rrq('f', { windowsize: 4 }), s.port);
    const oack = await c.next();
    await c.send(ack(0), oack.port);
    const w = [await c.next(), await c.next(), await c.next(), await c.next()];
    expect(w.map((d) => blockOf(d.data))).toEqual([1, 2, 3, 4]);
    await c.send(ack(2), oack.port); // lost block 3
    const again = [await c.next(), await c.next(), await c.next(), await c.next()];
    expect(again.map((d) => blockOf(d.data))).toEqual([3, 4, 5, 6]);
  });

  it('retransmits on timeout, then frees the slot of a client that vanished', async () => {
    await writeFiles(root, { f: pattern(5000) });
    const s = await startServer({ root, timeoutMs: 40, retries: 2, maxTransfers: 1 });
    server = s.server;
    const failed: string[] = [];
    s.server.on('failed', (_t, r) => failed.push(r.reason));
    const c = await probe();
    await c.send(rrq('f'), s.port);
    const sent = [await c.next(), await c.next(), await c.next()];
    expect(sent.map((d) => blockOf(d.data))).toEqual([1, 1, 1]);
    await waitFor(() => failed.length > 0, { timeoutMs: 2000 });
    expect(failed).toEqual(['timeout']);
    expect(s.server.counters.active).toBe(0);
    const r = await tftpGet({ host: '127.0.0.1', port: s.port, filename: 'f' });
    expect(r.bytes).toBe(5000);
  });

  it('answers "server busy" with ERROR 0 beyond the transfer limit', async () => {
    await writeFiles(root, { f: pattern(5000) });
    const s = await startServer({ root, maxTransfers: 2, timeoutMs: 3000 });
    server = s.server;
    const holders = [await probe(), await probe()];
    for (const h of holders) {
      await h.send(rrq('f'), s.port);
      await h.next();
    }
    const late = await probe();
    await late.send(rrq('f'), s.port);
    const e = await late.next();
    expect(opcodeOf(e.data)).toBe(5);
    expect(e.data.readUInt16BE(2)).toBe(0);
    expect(e.data.subarray(4, e.data.length - 1).toString()).toBe('server busy, retry later');
    expect(s.server.counters.busy).toBe(1);
  });

  it('ends quietly when the client sends ERROR 8 after the OACK (tsize probe)', async () => {
    await writeFiles(root, { f: pattern(5000) });
    const s = await startServer({ root });
    server = s.server;
    const { aborted, failed } = endsOf(s.server);
    const c = await probe();
    await c.send(rrq('f', { tsize: 0, blksize: 1468 }), s.port);
    const oack = await c.next();
    expect(oack.data.toString('latin1')).toBe('\0\x06tsize\x005000\0blksize\x001468\0');
    await c.send(Buffer.from('\0\x05\0\x08tsize probe\0', 'latin1'), oack.port);
    await waitFor(() => aborted.length > 0);
    expect(aborted).toEqual(['option-negotiation']);
    expect(failed).toEqual([]);
    expect(s.server.counters).toMatchObject({ optionAborts: 1, failed: 0, active: 0 });
  });

  it('ends a write quietly when the client declines our OACK with ERROR 8, leaving nothing on disk', async () => {
    const inbox = await tempDir('tftp-inbox-');
    try {
      const s = await startServer({ root, write: { dir: inbox } });
      server = s.server;
      const { aborted, failed } = endsOf(s.server);
      const c = await probe();
      await c.send(Buffer.concat([Buffer.from([0, 2]), rrq('up', { blksize: 1468 }).subarray(2)]), s.port);
      const oack = await c.next();
      expect(opcodeOf(oack.data)).toBe(6);
      await c.send(Buffer.from('\0\x05\0\x08no thanks\0', 'latin1'), oack.port);
      await waitFor(() => aborted.length > 0);
      expect(aborted).toEqual(['option-negotiation']);
      expect(failed).toEqual([]);
      expect(s.server.counters).toMatchObject({ optionAborts: 1, failed: 0 });
      await waitFor(async () => (await readdir(inbox)).length === 0, { what: 'temp file removed' });
    } finally {
      await removeDir(inbox);
    }
  });

  it('answers malformed requests with ERROR 4 and stays silent on noise', async () => {
    const s = await startServer({ root });
    server = s.server;
    const c = await probe();
    await c.send(Buffer.from('\0\x01nofilenameterminator', 'latin1'), s.port);
    expect(opcodeOf((await c.next()).data)).toBe(5);
    await c.send(Buffer.from([0]), s.port);
    await c.send(ack(1), s.port);
    await c.send(Buffer.from('\0\x05\0\0x\0', 'latin1'), s.port);
    expect(await c.collect(100)).toEqual([]);
    await c.send(rrq('f', {}, 'mail'), s.port);
    expect((await c.next()).data.readUInt16BE(2)).toBe(4);
  });
});

describe('hostile datagrams on live sockets', () => {
  it('survives 3,000 fuzzed datagrams on the listening port and a transfer port, and the transfer completes', async () => {
    const data = pattern(512 * 40);
    await writeFiles(root, { f: data });
    const s = await startServer({ root, timeoutMs: 60, retries: 1 });
    server = s.server;
    const rand = prng(0xf00d);
    const attacker = await probe();
    const c = await probe();
    await c.send(rrq('f', { blksize: 512 }), s.port);
    const oack = await c.next();
    expect(opcodeOf(oack.data)).toBe(6);
    const seeds = [rrq('f', { blksize: 512, tsize: 0 }), rrq('../x'), ack(3), Buffer.from('\0\x05\0\x08x\0', 'latin1'), Buffer.from([0, 3, 0, 1, 9, 9])];
    for (let i = 0; i < 3000; i++) {
      const seed = seeds[i % seeds.length]!;
      const d = Buffer.from(seed.subarray(0, Math.floor(rand() * (seed.length + 1))));
      for (let k = 0; k < 3; k++) if (d.length > 0) d[Math.floor(rand() * d.length)] = Math.floor(rand() * 256);
      await attacker.send(d, i % 2 === 0 ? s.port : oack.port);
    }
    // the real client carries on as if nothing happened
    const got: Buffer[] = [];
    let expect0 = 0;
    await c.send(ack(0), oack.port);
    for (;;) {
      const d = await c.next();
      if (opcodeOf(d.data) !== 3 || blockOf(d.data) !== expect0 + 1) continue;
      expect0++;
      got.push(d.data.subarray(4));
      await c.send(ack(expect0), oack.port);
      if (d.data.length < 516) break;
    }
    expect(Buffer.concat(got)).toEqual(data);
    await waitFor(() => s.server.counters.active === 0, { timeoutMs: 5000 });
    expect(s.server.counters.malformed + s.server.counters.unknownTid + s.server.counters.refused).toBeGreaterThan(0);
    expect((await tftpGet({ host: '127.0.0.1', port: s.port, filename: 'f' })).bytes).toBe(data.length);
  });
});

describe('path jail', () => {
  it('never serves a byte outside the root', async () => {
    await writeFile(join(outside, 'secret'), 'SECRET');
    await mkdir(join(root, 'sub'));
    await writeFiles(root, { 'sub/ok': Buffer.from('ok') });
    await symlink(join(outside, 'secret'), join(root, 'escape'));
    await symlink(outside, join(root, 'dirlink'));
    await symlink(join(root, 'sub', 'ok'), join(root, 'inside-link'));
    const s = await startServer({ root });
    server = s.server;
    const rel = join('..', outside.split('/').pop()!, 'secret');
    const attempts: Array<[string, string]> = [
      [rel, TftpErrors.ACCESS_VIOLATION],
      ['sub/../../etc/passwd', TftpErrors.ACCESS_VIOLATION],
      [`${outside}/secret`, TftpErrors.FILE_NOT_FOUND], // absolute: looked up inside the root
      ['..\\secret', TftpErrors.ACCESS_VIOLATION],
      ['escape', TftpErrors.ACCESS_VIOLATION],
      ['dirlink/secret', TftpErrors.ACCESS_VIOLATION],
      ['sub', TftpErrors.FILE_NOT_FOUND],
      ['missing', TftpErrors.FILE_NOT_FOUND],
    ];
    for (const [name, code] of attempts) {
      await expect(tftpGet({ host: '127.0.0.1', port: s.port, filename: name, retries: 0 }), name).rejects.toMatchObject({ code });
    }
    expect((await tftpGet({ host: '127.0.0.1', port: s.port, filename: 'inside-link' })).data!.toString()).toBe('ok');
    expect((await tftpGet({ host: '127.0.0.1', port: s.port, filename: '/sub/ok' })).data!.toString()).toBe('ok');
  });

  it('strips trailing 0xFF bytes from requested names', async () => {
    await writeFiles(root, { 'pxelinux.0': Buffer.from('pxe') });
    const s = await startServer({ root });
    server = s.server;
    const c = await probe();
    await c.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from('pxelinux.0'), Buffer.from([0xff, 0]), Buffer.from('octet\0')]), s.port);
    const d = await c.next();
    expect(d.data.subarray(4).toString()).toBe('pxe');
  });
});

describe('writes', () => {
  it('refuses write requests unless a write directory is configured', async () => {
    const s = await startServer({ root });
    server = s.server;
    await expect(tftpPut({ host: '127.0.0.1', port: s.port, filename: 'x', data: Buffer.from('x') })).rejects.toMatchObject({
      code: TftpErrors.ACCESS_VIOLATION,
    });
    expect(await readdir(root)).toEqual([]);
  });

  it('writes into the configured directory via a temp file, refusing to overwrite', async () => {
    const s = await startServer({ root, write: { dir: outside } });
    server = s.server;
    const data = pattern(300_000);
    const put = await tftpPut({ host: '127.0.0.1', port: s.port, filename: 'up.bin', data, blksize: 1468, windowsize: 8 });
    expect(put.bytes).toBe(data.length);
    await waitFor(() => s.server.counters.completed === 1);
    expect(sha256(await readFile(join(outside, 'up.bin')))).toBe(sha256(data));
    expect(await readdir(outside)).toEqual(['up.bin']);
    await expect(tftpPut({ host: '127.0.0.1', port: s.port, filename: 'up.bin', data })).rejects.toMatchObject({
      code: TftpErrors.REMOTE_ERROR,
      details: { tftpCode: 6 },
    });
    await expect(tftpPut({ host: '127.0.0.1', port: s.port, filename: '../up.bin', data })).rejects.toMatchObject({
      code: TftpErrors.ACCESS_VIOLATION,
    });
    const small = await tftpPut({ host: '127.0.0.1', port: s.port, filename: 'stream.bin', data: Readable.from([Buffer.alloc(700, 3)]), mode: 'octet' });
    expect(small.bytes).toBe(700);
  });

  it('refuses an upload over the size limit', async () => {
    const s = await startServer({ root, write: { dir: outside, maxBytes: 1000 } });
    server = s.server;
    await expect(tftpPut({ host: '127.0.0.1', port: s.port, filename: 'big', data: pattern(5000), blksize: 512 })).rejects.toMatchObject({
      code: TftpErrors.REMOTE_ERROR,
      details: { tftpCode: 3 },
    });
    await expect(tftpPut({ host: '127.0.0.1', port: s.port, filename: 'big2', data: Readable.from([pattern(5000)]) })).rejects.toMatchObject({
      details: { tftpCode: 3 },
    });
    await waitFor(async () => (await readdir(outside)).length === 0);
  });
});

describe('limits and lifecycle', () => {
  it('holds a transfer to its bandwidth cap', async () => {
    const data = pattern(300_000);
    await writeFiles(root, { f: data });
    const s = await startServer({ root, transferBytesPerSec: 400_000 });
    server = s.server;
    const t0 = performance.now();
    const r = await tftpGet({ host: '127.0.0.1', port: s.port, filename: 'f', blksize: 1468, windowsize: 16 });
    const secs = (performance.now() - t0) / 1000;
    expect(r.bytes).toBe(300_000);
    // (300 kB - 50 kB burst) / 400 kB/s = 0.625 s at least; unlimited takes ~20 ms
    expect(secs).toBeGreaterThan(0.55);
    expect(secs).toBeLessThan(3);
  });

  it('shares the global cap between transfers', async () => {
    await writeFiles(root, { f: pattern(150_000) });
    const s = await startServer({ root, globalBytesPerSec: 400_000 });
    server = s.server;
    const t0 = performance.now();
    await Promise.all([1, 2].map(() => tftpGet({ host: '127.0.0.1', port: s.port, filename: 'f', blksize: 1468, windowsize: 16 })));
    expect((performance.now() - t0) / 1000).toBeGreaterThan(0.55);
  });

  it('start and stop are idempotent, and stop ends running transfers', async () => {
    await writeFiles(root, { f: pattern(512 * 50) });
    const s = await startServer({ root, timeoutMs: 5000 });
    server = s.server;
    await s.server.start();
    const failed: string[] = [];
    s.server.on('failed', (_t, r) => failed.push(r.reason));
    const c = await probe();
    await c.send(rrq('f'), s.port);
    await c.next();
    await Promise.all([s.server.stop(), s.server.stop()]);
    expect(failed).toEqual(['server-stopped']);
    const e = await c.next();
    expect(opcodeOf(e.data)).toBe(5);
    expect(() => s.server.address()).toThrow(expect.objectContaining({ code: TftpErrors.NOT_STARTED }));
  });
});

describe('start-up errors', () => {
  it('fails start() with TFTP_BIND_FAILED when the port is taken', async () => {
    const a = await startServer({ root });
    server = a.server;
    const { createTftpServer } = await import('../../src/index.js');
    const b = createTftpServer({ root, port: a.port, address: '127.0.0.1' });
    await expect(b.start()).rejects.toMatchObject({ code: TftpErrors.BIND_FAILED });
  });
});
