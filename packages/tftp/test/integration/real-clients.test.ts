import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir, removeDir, e2eGate } from '@outpost/testing';
import type { TftpServer } from '../../src/index.js';
import { startServer, pattern, writeFiles, sha256 } from './helpers.js';

const run = promisify(execFile);
const gate = e2eGate('tftp real clients', { commands: ['curl', 'tftp', 'atftp'] });

const FILES: Record<string, Buffer> = {
  empty: Buffer.alloc(0),
  one: Buffer.from([0xa5]),
  'k512.bin': pattern(512 * 64, 3),
  // over 32 MiB: block numbers wrap past 65535 at blksize 512
  'big.img': pattern(32 * 1024 * 1024 + 1000, 9),
};
const SMALL = ['empty', 'one', 'k512.bin'];

describe.runIf(gate.run)('real clients fetch identical bytes', () => {
  let root: string;
  let out: string;
  let server: TftpServer;
  let port: number;
  const hashes = new Map<string, string>();

  beforeAll(async () => {
    root = await tempDir('tftp-e2e-root-');
    out = await tempDir('tftp-e2e-out-');
    await writeFiles(root, FILES);
    for (const [k, v] of Object.entries(FILES)) hashes.set(k, sha256(v));
    ({ server, port } = await startServer({ root }));
  });
  afterAll(async () => {
    await server?.stop();
    await removeDir(root);
    await removeDir(out);
  });

  const check = async (name: string, local: string): Promise<void> => {
    expect(sha256(await readFile(local)), name).toBe(hashes.get(name));
  };

  it('curl (tftp://, default 512 and --tftp-blksize 1468)', async () => {
    for (const name of [...SMALL, 'big.img']) {
      const local = join(out, `curl-${name}`);
      await run('curl', ['-sS', '--max-time', '60', '-o', local, `tftp://127.0.0.1:${port}/${name}`]);
      await check(name, local);
    }
    for (const name of SMALL) {
      const local = join(out, `curl1468-${name}`);
      await run('curl', ['-sS', '--max-time', '30', '--tftp-blksize', '1468', '-o', local, `tftp://127.0.0.1:${port}/${name}`]);
      await check(name, local);
    }
  }, 90_000);

  it("tftp-hpa's tftp (binary mode, lockstep 512)", async () => {
    for (const name of [...SMALL, 'big.img']) {
      const local = join(out, `hpa-${name}`);
      await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', name, local], { timeout: 60_000 });
      await check(name, local);
    }
  }, 90_000);

  it('atftp with windowsize 16', async () => {
    for (const name of [...SMALL, 'big.img']) {
      const local = join(out, `atftp-${name}`);
      await run('atftp', ['--option', 'windowsize 16', '--option', 'blksize 512', '--get', '-r', name, '-l', local, '127.0.0.1', String(port)], {
        timeout: 60_000,
      });
      await check(name, local);
    }
  }, 90_000);
});
