import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The first port of the kernel's ephemeral range (net.ipv4.ip_local_port_range), 32768 when
 * it cannot be read. Ports below it are never handed to an outgoing connection or to a
 * listener on port 0.
 */
function ephemeralStart(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 12_000 ? first : 32_768;
  } catch {
    return 32_768;
  }
}

async function canBind(port: number, type: 'tcp' | 'udp'): Promise<boolean> {
  if (type === 'udp') {
    const s = createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((resolve) => {
      try {
        s.close(() => resolve());
      } catch {
        resolve();
      }
    });
    return ok;
  }
  const srv = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise<void>((resolve) => srv.close(() => resolve()));
  return ok;
}

/**
 * A port on 127.0.0.1 that was free a moment ago, for a child process or a config that must
 * be given a port before it starts, or a service that restarts on the port it had. TCP
 * unless `udp`. It is taken below the kernel's ephemeral range (10000 up to it), so no
 * outgoing connection or port-0 listener of a parallel test can take it in between: with
 * port 0's choice, CI once saw a core fail to come back on its own port (EADDRINUSE)
 * because another test's connection had been given it as its local port.
 */
export async function freePort(type: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  // Each vitest worker draws from its own slice of the range (VITEST_POOL_ID), so parallel
  // test files never race for one port (CI saw EADDRINUSE between two workers' picks), and
  // a port is handed out once per process (two picks before either binds).
  const slices = 8;
  const slot = (Number(process.env.VITEST_POOL_ID ?? 0) || 0) % slices;
  const span = Math.floor((ephemeralStart() - 10_000) / slices);
  const low = 10_000 + slot * span;
  const high = low + span;
  for (let i = 0; i < 200; i++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (given.has(`${type}:${port}`)) continue;
    if (await canBind(port, type)) {
      given.add(`${type}:${port}`);
      return port;
    }
  }
  throw new Error(`freePort: no free ${type} port on 127.0.0.1 between ${low} and ${high} after 200 tries`);
}

/** Ports this process handed out already. */
const given = new Set<string>();
