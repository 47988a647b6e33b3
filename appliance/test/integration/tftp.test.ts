import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tftpGet } from '@outpost/tftp';
import { removeDir, tempDir, waitFor } from '@outpost/testing';
import { runCli, spawnOutpost, type Running } from '../helpers.js';

let dir: string;
let server: Running | undefined;
beforeAll(async () => {
  dir = await tempDir('outpost-tftp-cli-');
});
afterAll(async () => {
  await server?.stop('SIGKILL');
  await removeDir(dir);
});

it('outpost tftp serve DIR serves the directory until SIGTERM (exit 0)', async () => {
  await writeFile(join(dir, 'pxelinux.0'), 'boot loader bytes');
  server = spawnOutpost(['tftp', 'serve', dir, '--port', '0', '--address', '127.0.0.1'], { cwd: dir });
  const port = await waitFor(() => Number(/"event":"listening".*?"port":(\d+)/.exec(server!.stdout)?.[1]) || undefined, { timeoutMs: 10_000, what: 'the TFTP server to listen' });
  const got = await tftpGet({ host: '127.0.0.1', port, filename: 'pxelinux.0', timeoutMs: 500, retries: 5 });
  expect(got.data?.toString()).toBe('boot loader bytes');
  expect(await server.stop('SIGTERM')).toMatchObject({ code: 0 });
});

it('outpost tftp with a bad command line prints its usage and exits 2', async () => {
  const r = await runCli(['tftp', 'serve'], { cwd: dir });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('usage: outpost tftp serve DIR');
});
