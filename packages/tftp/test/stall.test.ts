import { describe, it, expect, afterEach, vi } from 'vitest';
import type { RemoteInfo } from 'node:dgram';
import { Session, type SessionEnd, type SessionEnv } from '../src/server/session.js';
import { BufferSource } from '../src/source/byte-source.js';
import { newCounters, type TransferInfo } from '../src/server/events.js';
import type { TransferSocket } from '../src/transfer/transfer-socket.js';
import { encodeAck } from '../src/packet/ack.js';

/** A socket that records what the session sends; the test plays the peer by calling `deliver`. */
class MemorySocket implements TransferSocket {
  readonly sent: Buffer[] = [];
  closed = false;
  #onMessage: ((msg: Buffer, rinfo: RemoteInfo) => void) | undefined;
  on(event: 'message' | 'error', listener: ((msg: Buffer, rinfo: RemoteInfo) => void) | ((err: Error) => void)): this {
    if (event === 'message') this.#onMessage = listener as (msg: Buffer, rinfo: RemoteInfo) => void;
    return this;
  }
  send(msg: Buffer, ...rest: unknown[]): void {
    this.sent.push(Buffer.from(msg));
    const cb = rest.find((r) => typeof r === 'function') as ((e: Error | null, n: number) => void) | undefined;
    cb?.(null, msg.length);
  }
  close(): void {
    this.closed = true;
  }
  deliver(msg: Buffer): void {
    this.#onMessage?.(msg, { address: '127.0.0.1', port: 4000, family: 'IPv4', size: msg.length });
  }
}

const info: TransferInfo = { id: 1, kind: 'read', filename: 'f', mode: 'octet', remoteAddress: '127.0.0.1', remotePort: 4000 };

function session(stallMs: number, timeoutMs: number, retries: number) {
  const ends: SessionEnd[] = [];
  const env: SessionEnv = { counters: newCounters(), log: () => ({ debug() {}, warn() {} }), end: (_i, e) => ends.push(e), globalBucket: undefined, transferBytesPerSec: 0, retries, stallMs };
  const socket = new MemorySocket();
  let released = false;
  const s = new Session(env, info, socket, { blksize: 512, windowsize: 1, timeoutMs, oack: undefined }, { onRelease: () => (released = true), onSocketClosed: () => undefined }, undefined);
  return { s, socket, env, ends, released: () => released };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('stall watchdog', () => {
  it('ends a transfer with no ACK advancing the window for stallMs, although its retransmit budget would last minutes', () => {
    vi.useFakeTimers();
    const t = session(2000, 60_000, 5);
    t.s.startRead(new BufferSource(Buffer.alloc(5000, 1)));
    t.socket.deliver(encodeAck(1)); // progress once
    vi.advanceTimersByTime(1500);
    t.socket.deliver(encodeAck(1)); // a duplicate is not progress
    expect(t.ends).toEqual([]);
    vi.advanceTimersByTime(500); // 2 s since the ACK, within a watchdog tick (200 ms)
    expect(t.ends).toEqual([]);
    vi.advanceTimersByTime(500);
    expect(t.ends).toHaveLength(1);
    expect(t.ends[0]).toMatchObject({ event: 'failed', result: { reason: 'stalled' } });
    expect(t.env.counters).toMatchObject({ stalled: 1, failed: 1 });
    expect(t.released()).toBe(true);
    const last = t.socket.sent.at(-1)!;
    expect(last.readUInt16BE(0)).toBe(5);
    expect(last.subarray(4, last.length - 1).toString()).toBe('transfer stalled');
  });

  it('leaves a transfer alone while ACKs keep advancing it', () => {
    vi.useFakeTimers();
    const t = session(1000, 60_000, 5);
    t.s.startRead(new BufferSource(Buffer.alloc(512 * 20 + 1, 1)));
    for (let b = 1; b <= 21; b++) {
      vi.advanceTimersByTime(900);
      t.socket.deliver(encodeAck(b));
    }
    expect(t.ends).toHaveLength(1);
    expect(t.ends[0]!.event).toBe('done');
    expect(t.env.counters.stalled).toBe(0);
  });
});
