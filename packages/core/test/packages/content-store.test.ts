import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isOutpostError, silentLogger } from '@outpost/common';
import { removeDir, tempDir, waitFor } from '@outpost/testing';
import type { Core } from '../../src/index.js';
import { ContentStore } from '../../src/packages/content-store.js';
import { api, sha, startCore } from './helpers.js';

const DATA = randomBytes(300_000);
const SHA = sha(DATA);

async function codeOf(p: Promise<unknown>): Promise<{ code: string; status: number | undefined; received: unknown }> {
  try {
    await p;
  } catch (err) {
    if (isOutpostError(err)) return { code: err.code, status: err.status, received: err.details?.received };
    throw err;
  }
  throw new Error('expected a failure');
}

describe('content store faults', () => {
  let dir: string;
  let store: ContentStore;
  beforeEach(async () => {
    dir = await tempDir('outpost-content-');
    store = new ContentStore(join(dir, 'content'), silentLogger());
    await store.open();
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('resumes a partial after a restart (no hash state in memory) and commits it', async () => {
    expect(await store.upload(SHA, DATA.length, 0, Readable.from([DATA.subarray(0, 100_000)]), undefined)).toEqual({ received: 100_000, complete: false });
    const again = new ContentStore(join(dir, 'content'), silentLogger());
    await again.open();
    expect(again.has(SHA)).toBe(false);
    expect(await again.received(SHA)).toBe(100_000);
    expect(await codeOf(again.upload(SHA, DATA.length, 0, Readable.from([DATA]), DATA.length))).toMatchObject({ code: 'CORE_PACKAGE_UPLOAD_OFFSET', status: 409, received: 100_000 });
    expect(await again.upload(SHA, DATA.length, 100_000, Readable.from([DATA.subarray(100_000)]), undefined)).toEqual({ received: DATA.length, complete: true });
    expect(again.has(SHA)).toBe(true);
    expect(await readdir(join(dir, 'content', 'tmp'))).toEqual([]);
  });

  it('a partial corrupted on disk behind its back fails the hash at the end, is dropped, and a fresh upload succeeds', async () => {
    await store.upload(SHA, DATA.length, 0, Readable.from([DATA.subarray(0, 1000)]), undefined);
    await writeFile(store.partialPath(SHA), randomBytes(1000));
    const restarted = new ContentStore(join(dir, 'content'), silentLogger());
    await restarted.open();
    expect(await codeOf(restarted.upload(SHA, DATA.length, 1000, Readable.from([DATA.subarray(1000)]), undefined))).toMatchObject({ code: 'CORE_PACKAGE_HASH_MISMATCH', status: 422, received: 0 });
    expect(await restarted.received(SHA)).toBe(0);
    expect((await restarted.upload(SHA, DATA.length, 0, Readable.from([DATA]), undefined)).complete).toBe(true);
  });

  it('refuses a second upload of the same content while one is in progress', async () => {
    let push: (b: Buffer | null) => void = () => undefined;
    const slow = new Readable({ read() {} });
    push = (b) => void slow.push(b);
    const first = store.upload(SHA, DATA.length, 0, slow, undefined);
    push(DATA.subarray(0, 10));
    await new Promise((r) => setTimeout(r, 20));
    expect(await codeOf(store.upload(SHA, DATA.length, 0, Readable.from([DATA]), undefined))).toMatchObject({ code: 'CORE_PACKAGE_UPLOAD_BUSY', status: 409 });
    push(DATA.subarray(10));
    push(null);
    expect((await first).complete).toBe(true);
  });

  it('a disk that cannot be written is the store failing (507), not a truncated upload', async () => {
    // The tmp dir replaced by a file: every write fails (ENOTDIR), as on a broken disk.
    await rm(join(dir, 'content', 'tmp'), { recursive: true });
    await writeFile(join(dir, 'content', 'tmp'), 'not a directory');
    expect(await codeOf(store.upload(SHA, DATA.length, 0, Readable.from([DATA]), DATA.length))).toMatchObject({ code: 'CORE_PACKAGE_STORE_FAILED', status: 507 });
    expect(store.has(SHA)).toBe(false);
  });

  it('a failed import leaves nothing behind in tmp', async () => {
    await expect(store.importFile(join(dir, 'no-such-file'))).rejects.toThrow();
    expect(await readdir(join(dir, 'content', 'tmp'))).toEqual([]);
  });

  it('opens only files it named (sha256/<ab>/<sha256>), and removes only those', async () => {
    await store.upload(SHA, DATA.length, 0, Readable.from([DATA]), undefined);
    const stray = join(dir, 'content', 'sha256', SHA.slice(0, 2), 'notes.txt');
    await writeFile(stray, 'mine');
    const misplaced = 'ab'.padEnd(64, '0');
    await mkdir(join(dir, 'content', 'sha256', 'cd'), { recursive: true });
    await writeFile(join(dir, 'content', 'sha256', 'cd', misplaced), 'wrong prefix');
    const again = new ContentStore(join(dir, 'content'), silentLogger());
    await again.open();
    expect(again.files).toBe(1);
    expect(again.bytes).toBe(DATA.length);
    expect(again.has(misplaced)).toBe(false);
    expect(await again.remove('../../escape')).toBe(0);
    expect(await again.remove(SHA)).toBe(DATA.length);
    expect(await readdir(join(dir, 'content', 'sha256', SHA.slice(0, 2)))).toEqual(['notes.txt']);
  });
});

describe('core packages: content lost from the store, bytes served', () => {
  let dir: string;
  let core: Core;
  beforeEach(async () => {
    dir = await tempDir('outpost-content-core-');
    core = await startCore(dir);
  });
  afterEach(async () => {
    await core.stop();
    await removeDir(dir);
  });

  const served = (): number => (core.stats().packages as { servedBytes: number }).servedBytes;

  it('a content file damaged on disk makes its package incomplete (saying why) until it is uploaded again', async () => {
    const call = api(core);
    const { json } = await call('POST', '/packages', { name: 'p', version: '1', files: [{ path: 'd.bin', size: DATA.length, sha256: SHA }] });
    const id = json.id as unknown as string;
    expect((await call('PUT', `/packages/${id}/files/d.bin`, DATA)).status).toBe(200);
    const file = join(dir, 'core', 'content', 'sha256', SHA.slice(0, 2), SHA);
    await truncate(file, 10);
    const get = await call('GET', `/packages/${id}/files/d.bin`);
    expect(get.status).toBe(404);
    expect(get.json.error!.code).toBe('CORE_PACKAGE_CONTENT_MISSING');
    const view = (await call('GET', `/packages/${id}`)).json;
    expect(view.state).toBe('incomplete');
    expect(view.problems).toEqual({ 'd.bin': 'content missing or damaged in the core store; upload it again' });
    expect(view.missing).toMatchObject([{ path: 'd.bin', received: 0 }]);
    // What `outpost package add` does again: the file is listed as missing and goes back in.
    expect((await call('PUT', `/packages/${id}/files/d.bin`, DATA)).status).toBe(200);
    expect((await call('GET', `/packages/${id}`)).json.state).toBe('ready');
    expect(served()).toBe(0);
  });

  it('counts the bytes it sent, not the ones it promised, when a client goes away', async () => {
    const big = randomBytes(32 * 1024 * 1024);
    const call = api(core);
    const { json } = await call('POST', '/packages', { name: 'big', version: '1', files: [{ path: 'big.bin', size: big.length, sha256: sha(big) }] });
    const id = json.id as unknown as string;
    expect((await call('PUT', `/packages/${id}/files/big.bin`, big)).status).toBe(200);
    // A whole download counts its length.
    const whole = Buffer.from(await (await fetch(`${core.url}/api/v1/packages/${id}/files/big.bin`, { headers: { authorization: `Bearer ${core.adminToken}` } })).arrayBuffer());
    expect(whole.length).toBe(big.length);
    await waitFor(() => served() === big.length, { timeoutMs: 30_000, what: 'the whole download counted' });
    // A client that reads 1 MiB and hangs up counts far less than the 32 MiB promised.
    await new Promise<void>((resolve, reject) => {
      const req = request(`${core.url}/api/v1/packages/${id}/files/big.bin`, { headers: { authorization: `Bearer ${core.adminToken}` } }, (res) => {
        let got = 0;
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got >= 1024 * 1024) {
            res.destroy();
            resolve();
          }
        });
        res.on('error', () => undefined);
      });
      req.on('error', reject);
      req.end();
    });
    const partial = await waitFor(() => served() > big.length && served() - big.length, { timeoutMs: 30_000, what: 'the broken download counted' });
    expect(partial).toBeGreaterThanOrEqual(1024 * 1024);
    expect(partial).toBeLessThan(big.length / 2);
  });
});
