import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { openUdpProbe, type UdpDatagram, type UdpProbe } from '@outpost/testing';
import { createTftpServer, type TftpServer, type TftpServerConfigInput, type TftpServerDeps } from '../../src/index.js';

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Deterministic pseudo-random bytes (fast; no crypto needed for test content). */
export function pattern(size: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  for (; i < size; i++) b[i] = i & 0xff;
  return b;
}

export async function writeFiles(dir: string, files: Record<string, Buffer>): Promise<void> {
  for (const [name, data] of Object.entries(files)) await writeFile(join(dir, name), data);
}

export async function startServer(config: TftpServerConfigInput, deps?: TftpServerDeps): Promise<{ server: TftpServer; port: number }> {
  const server = createTftpServer({ port: 0, address: '127.0.0.1', ...config }, deps);
  await server.start();
  return { server, port: server.address().port };
}

export const rrq = (name: string, opts: Record<string, string | number> = {}, mode = 'octet'): Buffer =>
  Buffer.concat([
    Buffer.from([0, 1]),
    Buffer.from(`${name}\0${mode}\0`, 'latin1'),
    ...Object.entries(opts).map(([k, v]) => Buffer.from(`${k}\0${v}\0`, 'latin1')),
  ]);
export const ack = (n: number): Buffer => Buffer.from([0, 4, (n >> 8) & 0xff, n & 0xff]);
export const opcodeOf = (b: Buffer): number => b.readUInt16BE(0);
export const blockOf = (b: Buffer): number => b.readUInt16BE(2);

/**
 * Lockstep from a first DATA (512-byte blocks) to the end: the file's bytes. With
 * `samePort`, every DATA must come from the first one's port.
 */
export async function ackToEnd(p: UdpProbe, first: UdpDatagram, o: { samePort?: boolean } = {}): Promise<Buffer> {
  let last = first;
  const got = [last.data.subarray(4)];
  while (last.data.length === 516) {
    await p.send(ack(blockOf(last.data)), last.port);
    last = await p.next();
    if (o.samePort) expect(last.port).toBe(first.port);
    got.push(last.data.subarray(4));
  }
  await p.send(ack(blockOf(last.data)), last.port);
  return Buffer.concat(got);
}

/** Collects the reasons of a server's `aborted` and `failed` events. */
export function endsOf(server: TftpServer): { aborted: string[]; failed: string[] } {
  const ends = { aborted: [] as string[], failed: [] as string[] };
  server.on('aborted', (_t, r) => ends.aborted.push(r.reason));
  server.on('failed', (_t, r) => ends.failed.push(r.reason));
  return ends;
}

/** UDP probes opened by a test file's tests, closed together in its `afterEach`. */
export function probePool(): { open(address?: string, port?: number): Promise<UdpProbe>; closeAll(): Promise<void> } {
  const open: UdpProbe[] = [];
  return {
    async open(address?: string, port?: number) {
      const p = await openUdpProbe(address, port);
      open.push(p);
      return p;
    },
    async closeAll() {
      for (const p of open.splice(0)) await p.close();
    },
  };
}
