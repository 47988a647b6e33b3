import { it, expect, afterEach } from 'vitest';
import { tempDir, removeDir, waitFor } from '@outpost/testing';
import { tftpGet, tftpPut, TftpErrors, type TftpServer } from '../../src/index.js';
import { startServer, pattern, writeFiles, endsOf } from './helpers.js';

let server: TftpServer | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await server?.stop();
  server = undefined;
  for (const d of dirs.splice(0)) await removeDir(d);
});

it('a get or put whose signal is already aborted rejects with TFTP_ABORTED and sends nothing', async () => {
  const root = await tempDir('tftp-client-');
  dirs.push(root);
  await writeFiles(root, { f: pattern(1000) });
  const s = await startServer({ root, port: 0, address: '127.0.0.1' });
  server = s.server;
  const signal = AbortSignal.abort(new Error('changed my mind'));
  await expect(tftpGet({ host: '127.0.0.1', port: s.port, filename: 'f', signal })).rejects.toMatchObject({ code: TftpErrors.ABORTED });
  await expect(tftpPut({ host: '127.0.0.1', port: s.port, filename: 'g', data: Buffer.from('x'), signal })).rejects.toMatchObject({
    code: TftpErrors.ABORTED,
  });
  expect(s.server.counters).toMatchObject({ requests: 0, failed: 0 });
});

it('aborting a get mid-transfer tells the server (ERROR 0) and rejects with TFTP_ABORTED', async () => {
  const root = await tempDir('tftp-client-');
  dirs.push(root);
  await writeFiles(root, { big: pattern(4 * 1024 * 1024) });
  // a slow server (64 KiB/s) so the transfer is still running when we abort
  const s = await startServer({ root, port: 0, address: '127.0.0.1', transferBytesPerSec: 64 * 1024 });
  server = s.server;
  const ends = endsOf(s.server);
  const ac = new AbortController();
  const got = tftpGet({ host: '127.0.0.1', port: s.port, filename: 'big', blksize: 1468, signal: ac.signal });
  await waitFor(() => s.server.counters.active === 1, { what: 'transfer running' });
  ac.abort();
  await expect(got).rejects.toMatchObject({ code: TftpErrors.ABORTED });
  await waitFor(() => ends.failed.length === 1, { what: 'server sees the abort' });
  // Our ERROR 0 ends it; or, when a DATA crossed it, the kernel's port-unreachable for the
  // closed client socket, reported before the queued ERROR.
  expect(['peer-error', 'socket-error']).toContain(ends.failed[0]);
  expect(s.server.counters.active).toBe(0);
});
