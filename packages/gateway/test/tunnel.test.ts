import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { Tunnel, upstreamReader, type TunnelOwner } from '../src/tunnel.js';

/**
 * A stand-in for the client's TLS socket: like TLSWrap it copies what it is written at
 * once, and it completes each write a turn later, so writes made meanwhile queue.
 */
function slowClient(highWaterMark: number): { sock: Duplex; received: Buffer[] } {
  const received: Buffer[] = [];
  const sock = new Duplex({
    highWaterMark,
    read() {},
    write(chunk: Buffer, _enc, cb) {
      received.push(Buffer.from(chunk));
      setImmediate(cb);
    },
  });
  return { sock, received };
}

const owner = { principal: 'ag_x', kind: 'agent', serial: '01', notAfter: 0 } as unknown as TunnelOwner;

describe('Tunnel reads from the target', () => {
  it('hands the shared read buffer to an idle client, copies it for a busy one, and stops reading past the high-water mark', async () => {
    const client = slowClient(4096);
    const upstream = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
    let resumed = 0;
    upstream.resume = function (this: Duplex) {
      resumed++;
      return this;
    };
    new Tunnel(1, owner, 't:1', client.sock as unknown as TLSSocket, upstream as unknown as Socket, () => undefined, 0);
    const reader = upstreamReader(1024);
    const buf = reader.buffer as Buffer;
    const read = (fill: number, n: number): boolean => {
      buf.fill(fill, 0, n);
      return reader.callback.call(upstream, n, buf);
    };
    // The first read goes straight to the client; the next ones queue behind it, and the
    // fifth brings the queue to the high-water mark.
    expect([read(1, 1000), read(2, 1000), read(3, 1000), read(4, 1000), read(5, 1000)]).toEqual([true, true, true, true, false]);
    await new Promise((r) => client.sock.once('drain', r));
    expect(resumed).toBe(1);
    expect(Buffer.concat(client.received)).toEqual(Buffer.concat([1, 2, 3, 4, 5].map((v) => Buffer.alloc(1000, v))));
  });
});
