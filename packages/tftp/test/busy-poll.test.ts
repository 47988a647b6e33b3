import { describe, it, expect, afterEach } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { waitFor } from '@outpost/testing';
import { BusyPoll } from '../src/transfer/busy-poll.js';
import { BlockSender, type SenderEnd } from '../src/transfer/sender.js';
import { BufferSource } from '../src/source/byte-source.js';
import { encodeAck } from '../src/packet/ack.js';

describe('BusyPoll', () => {
  it('keeps the loop turning for its budget after a kick, then lets it sleep by itself', async () => {
    const bp = new BusyPoll(20_000);
    bp.kick(performance.now());
    expect(bp.active).toBe(true);
    await new Promise((r) => setTimeout(r, 5));
    expect(bp.turns).toBeGreaterThan(0);
    await waitFor(() => !bp.active, { timeoutMs: 2000 });
    const turns = bp.turns;
    await new Promise((r) => setTimeout(r, 20));
    expect(bp.turns).toBe(turns);
  });

  it('never spins with a zero budget, after stop(), or with more transfers than it spins for', async () => {
    const off = new BusyPoll(0);
    off.kick(performance.now());
    expect(off.active).toBe(false);

    const crowded = new BusyPoll(20_000, 2);
    for (let i = 0; i < 3; i++) crowded.attach();
    crowded.kick(performance.now());
    expect(crowded.active).toBe(false);
    crowded.detach();
    crowded.kick(performance.now());
    expect(crowded.active).toBe(true);

    crowded.stop();
    await waitFor(() => !crowded.active, { timeoutMs: 2000 });
    crowded.kick(performance.now());
    expect(crowded.active).toBe(false);
  });
});

describe('BlockSender with a busy poller', () => {
  let sockets: Socket[] = [];
  afterEach(() => {
    for (const s of sockets) s.close();
    sockets = [];
  });

  async function pair(): Promise<[Socket, Socket]> {
    const a = createSocket('udp4');
    const b = createSocket('udp4');
    sockets.push(a, b);
    await Promise.all([new Promise<void>((r) => a.bind(0, '127.0.0.1', r)), new Promise<void>((r) => b.bind(0, '127.0.0.1', r))]);
    return [a, b];
  }

  /** Sends `blocks` 512-byte blocks to a peer that ACKs each after `ackDelayMs`. */
  async function run(blocks: number, ackDelayMs: number, bp: BusyPoll): Promise<SenderEnd> {
    const [server, client] = await pair();
    const data = Buffer.alloc(512 * blocks - 1, 7);
    const cport = client.address().port;
    return new Promise<SenderEnd>((resolve) => {
      const sender = new BlockSender({
        socket: server,
        port: cport,
        address: '127.0.0.1',
        source: new BufferSource(data),
        blksize: 512,
        windowsize: 1,
        timeoutMs: 2000,
        retries: 3,
        buckets: [],
        busyPoll: bp,
        onEnd: resolve,
      });
      server.on('message', (m) => sender.onAck(m.readUInt16BE(2)));
      const sport = server.address().port;
      client.on('message', (m) => {
        const ack = encodeAck(m.readUInt16BE(2));
        if (ackDelayMs > 0) setTimeout(() => client.send(ack, sport, '127.0.0.1'), ackDelayMs);
        else client.send(ack, sport, '127.0.0.1');
      });
      sender.start();
    });
  }

  it('kicks once per block for a peer that answers within the budget', async () => {
    const bp = new BusyPoll(1_000_000); // 1 s: every loopback round trip fits
    const end = await run(200, 0, bp);
    expect(end).toMatchObject({ ok: true, bytes: 512 * 200 - 1 });
    expect(bp.kicks).toBe(200);
  });

  it('stops spinning for a peer slower than the budget (re-measuring now and then)', async () => {
    const bp = new BusyPoll(100); // 0.1 ms; the peer takes 3 ms
    const end = await run(60, 3, bp);
    expect(end.ok).toBe(true);
    // The first block is sent optimistically; from the first slow ACK on, it is not spun for.
    expect(bp.kicks).toBeLessThanOrEqual(2);
    await waitFor(() => !bp.active, { timeoutMs: 2000 });
  });
});
