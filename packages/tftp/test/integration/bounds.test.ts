import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { tempDir, removeDir, waitFor } from '@outpost/testing';
import { tftpGet, type TftpServer } from '../../src/index.js';
import { probePool, startServer, pattern, writeFiles, rrq, ack, opcodeOf, blockOf, endsOf } from './helpers.js';

let root: string;
let server: TftpServer | undefined;
const probes = probePool();
const probe = probes.open;

beforeEach(async () => {
  root = await tempDir('tftp-bounds-');
  await writeFiles(root, { f: pattern(20_000) });
});
afterEach(async () => {
  await probes.closeAll();
  await server?.stop();
  server = undefined;
  await removeDir(root);
});

const oackOptions = (b: Buffer): Record<string, string> => {
  const parts = b.subarray(2).toString('latin1').split('\0');
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) out[parts[i]!] = parts[i + 1]!;
  return out;
};

describe('resource bounds', () => {
  for (const workers of [0, 1]) {
    it(`declines a timeout option above maxTimeoutMs and keeps its own retransmit timer (workers ${workers})`, async () => {
      const s = await startServer({ root, workers, maxTimeoutMs: 2000, timeoutMs: 100, retries: 50, stallMs: 60_000 });
      server = s.server;
      const c = await probe();
      await c.send(rrq('f', { timeout: 255, blksize: 1024 }), s.port);
      const oack = await c.next();
      expect(opcodeOf(oack.data)).toBe(6);
      expect(oackOptions(oack.data)).toEqual({ blksize: '1024' });
      // never ACKed: the OACK comes again after our 100 ms, not after 255 s
      const t0 = performance.now();
      const again = await c.next(2000);
      expect(opcodeOf(again.data)).toBe(6);
      expect(performance.now() - t0).toBeLessThan(1000);
    });

    it(`ends a transfer that makes no progress for stallMs with an ERROR and frees its slot (workers ${workers})`, async () => {
      const s = await startServer({ root, workers, maxTimeoutMs: 5000, timeoutMs: 5000, retries: 100, stallMs: 400, maxTransfers: 1 });
      server = s.server;
      const ends = endsOf(s.server);
      const c = await probe();
      await c.send(rrq('f', { timeout: 5 }), s.port);
      const oack = await c.next();
      expect(opcodeOf(oack.data)).toBe(6);
      expect(oackOptions(oack.data)).toEqual({ timeout: '5' });
      // acks block 1 then goes silent: progress once, then a stall
      await c.send(ack(0), oack.port);
      const d1 = await c.next();
      expect(blockOf(d1.data)).toBe(1);
      await c.send(ack(1), oack.port);
      await c.next();
      const t0 = performance.now();
      const err = await c.next(3000);
      expect(opcodeOf(err.data)).toBe(5);
      expect(err.data.subarray(4, err.data.length - 1).toString()).toBe('transfer stalled');
      const waited = performance.now() - t0;
      expect(waited).toBeGreaterThan(300);
      expect(waited).toBeLessThan(1500);
      await waitFor(() => ends.failed.length === 1);
      expect(ends.failed).toEqual(['stalled']);
      expect(s.server.counters).toMatchObject({ stalled: 1, active: 0 });
      const r = await tftpGet({ host: '127.0.0.1', port: s.port, filename: 'f' });
      expect(r.bytes).toBe(20_000);
    });
  }

  it('keeps a slow but progressing transfer going past stallMs', async () => {
    const s = await startServer({ root, stallMs: 300, timeoutMs: 2000 });
    server = s.server;
    const ends = endsOf(s.server);
    const c = await probe();
    await c.send(rrq('f'), s.port);
    let last = await c.next();
    const t0 = performance.now();
    while (last.data.length === 516) {
      await new Promise((r) => setTimeout(r, 25));
      await c.send(ack(blockOf(last.data)), last.port);
      last = await c.next();
      expect(opcodeOf(last.data)).toBe(3);
    }
    await c.send(ack(blockOf(last.data)), last.port);
    expect(performance.now() - t0).toBeGreaterThan(600);
    await waitFor(() => s.server.counters.completed === 1);
    expect(ends.failed).toEqual([]);
  });

  it('answers an RRQ beyond the session cap at once with ERROR, while the holders never ACK', async () => {
    const s = await startServer({ root, maxTransfers: 3, maxTimeoutMs: 5000, stallMs: 60_000 });
    server = s.server;
    for (let i = 0; i < 3; i++) {
      const h = await probe();
      await h.send(rrq('f', { timeout: 255 }), s.port);
      expect(opcodeOf((await h.next()).data)).toBe(3); // timeout declined: no OACK, DATA 1
    }
    const late = await probe();
    const t0 = performance.now();
    await late.send(rrq('f', { timeout: 255 }), s.port);
    const e = await late.next();
    expect(performance.now() - t0).toBeLessThan(200);
    expect(opcodeOf(e.data)).toBe(5);
    expect(s.server.counters).toMatchObject({ busy: 1, active: 3 });
  });
});
