import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay on 127.0.0.1 between a client and a server, for link faults: `cut()` turns it
 * into a black hole (not a reset): every connection open then, and every new one, stays
 * open but its bytes are discarded both ways, and a FIN or RST from one side is not passed
 * to the other. `heal()` lets new connections through again; the ones cut stay dead (their
 * bytes were lost), so the peers must notice by themselves, as after a real outage that
 * outlived their TCP sessions.
 */
export interface TcpRelay {
  /** `host:port` of the relay. */
  readonly address: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** `existing: false` black-holes only new connections (open ones keep flowing). @default true */
  cut(opts?: { existing?: boolean }): void;
  heal(): void;
  /** Passes at most `bytesPerSecond` each way on each connection (0: no limit), from now on. */
  throttle(bytesPerSecond: number): void;
  /** Resolves at the next connection the relay accepts (and black-holes, when cut). */
  nextConnection(): Promise<void>;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  server: Socket;
  dead: boolean;
}

export async function startTcpRelay(target: { host?: string; port: number }): Promise<TcpRelay> {
  const pairs = new Set<Pair>();
  let blackhole = false;
  let accepted = 0;
  let rate = 0;
  let waiters: Array<() => void> = [];
  const server: Server = createServer((client) => {
    accepted++;
    const pair: Pair = { client, server: connect(target.port, target.host ?? '127.0.0.1'), dead: blackhole };
    pairs.add(pair);
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (chunk: Buffer) => {
        if (!pair.dead) to.write(chunk);
        if (rate > 0) {
          from.pause();
          setTimeout(() => from.resume(), (chunk.length / rate) * 1000);
        }
      });
      from.on('end', () => {
        if (!pair.dead) to.end();
      });
      from.on('close', () => {
        if (!pair.dead) to.destroy();
        if (client.destroyed && pair.server.destroyed) pairs.delete(pair);
      });
      from.on('error', () => undefined);
    };
    forward(client, pair.server);
    forward(pair.server, client);
    const w = waiters;
    waiters = [];
    for (const fn of w) fn();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    address: `127.0.0.1:${port}`,
    port,
    get accepted() {
      return accepted;
    },
    cut({ existing = true } = {}) {
      blackhole = true;
      if (existing) for (const p of pairs) p.dead = true;
    },
    heal() {
      blackhole = false;
    },
    throttle(bytesPerSecond: number) {
      rate = bytesPerSecond;
    },
    nextConnection() {
      return new Promise((resolve) => waiters.push(resolve));
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.server.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
