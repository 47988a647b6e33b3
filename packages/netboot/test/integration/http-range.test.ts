// Byte ranges on the boot HTTP server (iPXE and UEFI HTTP boot fetch kernels and
// initrds with them), checked with curl against a loader file on 127.0.0.1.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { removeDir, tempDir } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetboot, type BootBackend, type Netboot } from '../../src/index.js';

const run = promisify(execFile);
const SIZE = 300_000;
const backend: BootBackend = {
  decide: async ({ mac }) => ({ mac, kind: 'unknown', script: '#!ipxe\nexit\n', ttlMs: 0 }),
  image: async (name) => ({ name, package: 'p', packageInfo: null }),
  fileUrl: () => ({ url: 'http://127.0.0.1:1/none', bearer: '' }),
  events: async () => undefined,
};
let dir: string;
let nb: Netboot;
let body: Buffer;
let url: string;

/** curl's status, headers (lower-case names) and body. */
async function curl(args: string[]): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const out = join(dir, `out-${randomBytes(4).toString('hex')}`);
  const r = await run('curl', ['-sS', '--max-time', '20', '-D', '-', '-o', out, ...args], { encoding: 'latin1' });
  const blocks = r.stdout.trim().split(/\r?\n\r?\n/);
  const lines = blocks[blocks.length - 1]!.split(/\r?\n/);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(lines[0]!)?.[1]), headers, body: await readFile(out).catch(() => Buffer.alloc(0)) };
}

beforeAll(async () => {
  dir = await tempDir('outpost-netboot-range-');
  await mkdir(join(dir, 'loaders'));
  body = randomBytes(SIZE);
  await writeFile(join(dir, 'loaders', 'snponly.efi'), body);
  nb = createNetboot(
    { coreUrl: 'http://127.0.0.1:1', dataDir: join(dir, 'nb'), serverAddress: '127.0.0.1', proxyDhcp: { enabled: false }, tftp: { enabled: false }, http: { host: '127.0.0.1', port: 0 }, loaders: { dir: join(dir, 'loaders') } },
    { backend },
  );
  await nb.start();
  url = `${nb.url}/loaders/snponly.efi`;
});
afterAll(async () => {
  await nb?.stop();
  await removeDir(dir);
});

describe('boot HTTP byte ranges', () => {
  it('serves the whole file with Accept-Ranges when no range is asked', async () => {
    const r = await curl([url]);
    expect(r.status).toBe(200);
    expect(r.headers['accept-ranges']).toBe('bytes');
    expect(r.headers['content-range']).toBeUndefined();
    expect(r.body.equals(body)).toBe(true);
  });

  it('answers one range, an open-ended range and a suffix range with 206 and the right bytes', async () => {
    const mid = await curl(['-r', '1000-1999', url]);
    expect(mid.status).toBe(206);
    expect(mid.headers['content-range']).toBe(`bytes 1000-1999/${SIZE}`);
    expect(mid.headers['content-length']).toBe('1000');
    expect(mid.body.equals(body.subarray(1000, 2000))).toBe(true);

    const tail = await curl(['-r', `${SIZE - 10}-`, url]);
    expect(tail.status).toBe(206);
    expect(tail.headers['content-range']).toBe(`bytes ${SIZE - 10}-${SIZE - 1}/${SIZE}`);
    expect(tail.body.equals(body.subarray(SIZE - 10))).toBe(true);

    const suffix = await curl(['-r', '-500', url]);
    expect(suffix.status).toBe(206);
    expect(suffix.body.equals(body.subarray(SIZE - 500))).toBe(true);

    // A last byte past the end is clamped to the end.
    const past = await curl(['-r', `${SIZE - 4}-${SIZE + 1000}`, url]);
    expect(past.status).toBe(206);
    expect(past.headers['content-range']).toBe(`bytes ${SIZE - 4}-${SIZE - 1}/${SIZE}`);
    expect(past.body.equals(body.subarray(SIZE - 4))).toBe(true);
  });

  it('resumes an interrupted download (curl -C -) to the exact file', async () => {
    const part = join(dir, 'resume.bin');
    await writeFile(part, body.subarray(0, 123_457));
    await run('curl', ['-sS', '--max-time', '20', '-C', '-', '-o', part, url]);
    expect((await readFile(part)).equals(body)).toBe(true);
  });

  it('answers a range that starts past the end with 416 and the size', async () => {
    const r = await curl(['-r', `${SIZE}-${SIZE + 10}`, url]);
    expect(r.status).toBe(416);
    expect(r.headers['content-range']).toBe(`bytes */${SIZE}`);
    expect(r.body.length).toBe(0);
  });

  it('HEAD with a range gives the 206 headers and no body; several ranges get the whole file', async () => {
    const head = await curl(['-I', '-r', '10-19', url]);
    expect(head.status).toBe(206);
    expect(head.headers['content-length']).toBe('10');
    expect(head.headers['content-range']).toBe(`bytes 10-19/${SIZE}`);
    const multi = await curl(['-r', '0-9,20-29', url]);
    expect(multi.status).toBe(200);
    expect(multi.body.equals(body)).toBe(true);
    const ifRange = await curl(['-r', '0-9', '-H', 'If-Range: "x"', url]);
    expect(ifRange.status).toBe(200);
    expect(ifRange.body.length).toBe(SIZE);
  });
});
