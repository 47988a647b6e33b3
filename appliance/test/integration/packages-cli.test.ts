import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { main } from '@outpost/appliance';
import type { Core } from '@outpost/core';
import type { PackageServer } from '@outpost/package-server';
import { removeDir, tempDir, waitFor } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordingIo } from '../io.js';
import { startCoreAndPackageServer } from '../package-server-fixture.js';

let core: Core;
let ps: PackageServer;
let dir: string;
let pkgDir: string;
const BIG = randomBytes(2 * 1024 * 1024 + 5);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  dir = await tempDir('outpost-cli-packages-');
  ({ core, ps } = await startCoreAndPackageServer(dir, 'ps-1'));
  pkgDir = join(dir, 'demo');
  await mkdir(join(pkgDir, 'bin'), { recursive: true });
  await writeFile(join(pkgDir, 'bin', 'big.bin'), BIG);
  await writeFile(join(pkgDir, 'readme.txt'), 'hello\n');
  await writeFile(join(pkgDir, 'empty'), '');
});
afterAll(async () => {
  await ps?.stop();
  await core?.stop();
  await removeDir(dir);
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = recordingIo(dir, { OUTPOST_URL: core.url, OUTPOST_TOKEN: core.adminToken });
  const code = await main(argv, io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

async function api(method: string, path: string, body?: Buffer | object): Promise<{ status: number; json: Record<string, unknown> }> {
  const bytes = Buffer.isBuffer(body);
  const res = await fetch(`${core.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${core.adminToken}`, 'content-type': bytes ? 'application/octet-stream' : 'application/json' },
    ...(body === undefined ? {} : { body: bytes ? body : JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('outpost package commands', () => {
  it('refuses bad command lines with exit 2 and bad input with an error code', async () => {
    expect((await cli('package', 'add', pkgDir)).code).toBe(2);
    expect((await cli('package', 'add', '--name', 'x')).code).toBe(2);
    expect((await cli('package', 'frob')).code).toBe(2);
    expect((await cli('package', 'enable', 'x', '--servers', 'a', '--site', 'b')).code).toBe(2);
    expect((await cli('package', 'enable', 'x', '--max-servers', 'lots')).code).toBe(2);
    expect(await cli('package', 'add', join(dir, 'nope'), '--name', 'x')).toMatchObject({ code: 1, err: expect.stringMatching(/^error APPLIANCE_PACKAGE_DIR: /) });
    expect(await cli('package', 'show', 'nope')).toMatchObject({ code: 1, err: expect.stringMatching(/^error CORE_PACKAGE_NOT_FOUND: /) });
    expect(await cli('package', 'enable', 'nope')).toMatchObject({ code: 1, err: expect.stringContaining('CORE_PACKAGE_NOT_FOUND') });
    expect((await cli('packages')).out).toBe('no packages');
  });

  it('resumes an interrupted add from what the core holds, then the package is ready', async () => {
    // An add that broke off: the manifest is in, half of the big file and nothing else.
    const manifest = [
      { path: 'bin/big.bin', size: BIG.length, sha256: sha(BIG) },
      { path: 'empty', size: 0, sha256: sha(Buffer.alloc(0)) },
      { path: 'readme.txt', size: 6, sha256: sha(Buffer.from('hello\n')) },
    ];
    const created = await api('POST', '/packages', { name: 'demo', version: '1', files: manifest });
    expect(created.status).toBe(201);
    const half = 1024 * 1024;
    expect((await api('PUT', `/packages/${String(created.json.id)}/files/bin/big.bin?offset=0`, BIG.subarray(0, half))).status).toBe(200);

    const r = await cli('package', 'add', pkgDir, '--name', 'demo', '--version', '1', '--json');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(`resuming bin/big.bin at ${half} of ${BIG.length} bytes`);
    const out = JSON.parse(r.out) as { state: string; uploaded: { files: number; bytes: number; resumedBytes: number } };
    expect(out.state).toBe('ready');
    expect(out.uploaded).toEqual({ files: 3, bytes: BIG.length - half + 6, resumedBytes: half });

    // Again: nothing left to send.
    const again = await cli('package', 'add', pkgDir, '--name', 'demo', '--version', '1');
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/^package demo@1 \(pk_\w+\): 3 files, 2\.0 MiB, ready\n {2}uploaded 0 files \(0 B\)/);
  });

  it('enables on the package servers; show reports each ready with its codebase; packages lists it', async () => {
    const en = await cli('package', 'enable', 'demo');
    expect(en).toMatchObject({ code: 0, out: 'package demo@1 enabled on 1 package server: ps-1' });
    const view = await waitFor(
      async () => {
        const v = JSON.parse((await cli('package', 'show', 'demo', '--json')).out) as { servers: { state: string; codebase?: string; bytesDone: number }[] };
        return v.servers.length === 1 && v.servers.every((s) => s.state === 'ready' && s.codebase) && v;
      },
      { timeoutMs: 45_000, what: 'demo ready on ps-1' },
    );
    expect(view.servers[0]!.codebase).toBe(`${ps.url}/packages/${(JSON.parse((await cli('package', 'show', 'demo', '--json')).out) as { id: string }).id}`);
    const res = await fetch(`${view.servers[0]!.codebase}/bin/big.bin`);
    expect(res.headers.get('etag')).toBe(`"${sha(BIG)}"`);
    expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(sha(BIG));

    const table = await cli('package', 'show', 'demo');
    expect(table.out).toMatch(/^package demo@1 {2}pk_\w+ {2}ready {2}enabled {2}3 files {2}2\.0 MiB/);
    expect(table.out).toMatch(/SERVER\s+KIND\s+STATE\s+BYTES\s+LAST ERROR\s+NEXT RETRY\s+CODEBASE/);
    expect(table.out).toMatch(/ps-1\s+unconstrained\s+ready\s+2\.0 MiB\/2\.0 MiB 100%\s+-\s+-\s+http:\/\/127\.0\.0\.1:\d+\/packages\/pk_\w+/);
    expect((await cli('packages')).out).toMatch(/NAME\s+VERSION\s+STATE\s+FILES\s+SIZE\s+ENABLED\s+SERVERS READY\ndemo\s+1\s+ready\s+3\s+2\.0 MiB\s+yes\s+1\/1/);
    expect((JSON.parse((await cli('packages', '--json')).out) as { items: unknown[] }).items).toHaveLength(1);
  });

  it('disables and deletes it, freeing its content', async () => {
    expect(await cli('package', 'disable', 'demo')).toMatchObject({ code: 0, out: 'package demo@1 disabled' });
    expect((JSON.parse((await cli('package', 'show', 'demo', '--json')).out) as { enabled: boolean }).enabled).toBe(false);
    const rm = await cli('package', 'rm', 'demo', '--json');
    expect(JSON.parse(rm.out)).toEqual({ freedBytes: BIG.length + 6 });
    expect((await cli('package', 'show', 'demo')).code).toBe(1);
  });
});
