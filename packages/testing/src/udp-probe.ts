import { createSocket, type Socket } from 'node:dgram';

export interface UdpDatagram {
  data: Buffer;
  address: string;
  port: number;
}

export interface UdpProbe {
  readonly socket: Socket;
  readonly port: number;
  /** Sends `data` to address:port (default 127.0.0.1). */
  send(data: Buffer, port: number, address?: string): Promise<void>;
  /** The next datagram, or throws after `timeoutMs`. */
  next(timeoutMs?: number): Promise<UdpDatagram>;
  /** Every datagram that arrives within `ms` (for "nothing else was sent" checks). */
  collect(ms: number): Promise<UdpDatagram[]>;
  close(): Promise<void>;
}

/**
 * A raw UDP socket on 127.0.0.1 (or `address`, on `port`: 0 picks one) for protocol
 * tests that play a misbehaving peer: datagrams queue until read, so a test never misses one.
 */
export function openUdpProbe(address = '127.0.0.1', port = 0): Promise<UdpProbe> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const queue: UdpDatagram[] = [];
    let waiter: ((d: UdpDatagram) => void) | undefined;
    socket.on('message', (data, rinfo) => {
      const d = { data, address: rinfo.address, port: rinfo.port };
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w(d);
      } else queue.push(d);
    });
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      let closed = false;
      const probe: UdpProbe = {
        socket,
        port: socket.address().port,
        send: (data, port, to = '127.0.0.1') =>
          new Promise((res, rej) => socket.send(data, port, to, (err) => (err ? rej(err) : res()))),
        next: (timeoutMs = 2000) => {
          const q = queue.shift();
          if (q) return Promise.resolve(q);
          return new Promise((res, rej) => {
            const t = setTimeout(() => {
              waiter = undefined;
              rej(new Error(`no datagram within ${timeoutMs} ms`));
            }, timeoutMs);
            waiter = (d) => {
              clearTimeout(t);
              res(d);
            };
          });
        },
        collect: async (ms) => {
          await new Promise((r) => setTimeout(r, ms));
          return queue.splice(0, queue.length);
        },
        close: () =>
          new Promise((res) => {
            if (closed) return res();
            closed = true;
            socket.close(() => res());
          }),
      };
      resolve(probe);
    });
  });
}
