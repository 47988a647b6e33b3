// Packages down the hierarchy with real package servers: a parent core and a child core
// (in this process, ports 0), each with its own package servers. The child's unconstrained
// package server stages a package the parent sent down straight from the parent's package
// server (the child core's link carries no content); a parent package server serving wrong
// bytes is refused by hash and the child core fetches the content from the parent itself
// (its servers end ready from it); with no package server on the parent the child core
// fetches it in the background. (A kill -9 of the child mid-fetch: hierarchy-faults.test.ts.)
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase, silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { createPackageServer, packageServerConfigSchema, type PackageServer } from '@outpost/package-server';
import { grantFor, removeDir, tempDir, waitFor } from '@outpost/testing';
import { apiFetch, cleanupAfterEach } from './fixtures/e2e.js';

const cleanup = cleanupAfterEach();
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const LINK = { degradedAfter: 3_000, failedAfter: 10_000, summaryInterval: 200 };

const FILES: Record<string, Buffer> = {
  'bin/big.bin': randomBytes(2 * 1024 * 1024 + 7),
  'etc/small.txt': Buffer.from('setting = 1\n'),
};
const SIZE = Object.values(FILES).reduce((n, b) => n + b.length, 0);

type Stats = { fetchedFrom: Record<string, { bytes: number; files: number }>; http: { bytesTo: Record<string, number> } };
const stats = (s: PackageServer): Stats => s.stats() as unknown as Stats;

interface Side {
  core: Core;
  dir: string;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

async function startSide(dir: string, name: string, hierarchy: Record<string, unknown>): Promise<Side> {
  const core = createCore(
    validateConfig(
      coreConfigSchema,
      { dataDir: join(dir, name), http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, siteServers: { heartbeatInterval: '2s' }, hierarchy: { name, ...LINK, ...hierarchy } },
      { file: '<test>' },
    ),
    { logger: silentLogger() },
  );
  await core.start();
  cleanup(() => core.stop());
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await apiFetch(core.url, core.adminToken, method, path, body);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return { core, dir, call };
}

async function packageServer(side: Side, name: string, constrained: boolean, address: string, extra: Record<string, unknown> = {}): Promise<PackageServer> {
  const token = (await side.core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ package: { constrained } }, { address, addresses: ['127.0.0.1'] }) })).token;
  const ps = createPackageServer(
    validateConfig(
      packageServerConfigSchema,
      {
        name,
        coreUrl: side.core.url,
        dataDir: join(side.dir, name),
        constrained,
        enrollToken: token,
        address,
        http: { host: '127.0.0.1', port: 0 },
        tickle: { host: '127.0.0.1', port: 0 },
        retry: { base: '300ms', cap: '2s' },
        reserveBytes: 0,
        timeout: '5s',
        ...extra,
      },
      { file: '<test>' },
    ),
    { logger: silentLogger() },
  );
  await ps.start();
  cleanup(() => ps.stop());
  return ps;
}

/** A parent with a link listener and a child in site `branch` with an unconstrained and a constrained package server; the child not joined yet. */
async function hierarchy(opts: { parentServer: boolean; parentServerExtra?: Record<string, unknown> }) {
  const dir = await tempDir('outpost-hier-pkg-');
  cleanup(() => removeDir(dir));
  const parent = await startSide(dir, 'hq', { listen: { host: '127.0.0.1', port: 0 } });
  const child = await startSide(dir, 'emea', {});
  expect((await child.call('POST', '/sites', { name: 'branch', subnets: ['10.2.0.0/16'] })).status).toBe(201);
  const hq = opts.parentServer ? await packageServer(parent, 'hq-ps', false, '10.1.0.5/24', opts.parentServerExtra) : undefined;
  const bu = await packageServer(child, 'branch-ps', false, '10.2.0.5/24');
  const bc = await packageServer(child, 'branch-ps-c', true, '10.2.0.6/24');
  const manifest = Object.entries(FILES).map(([path, b]) => ({ path, size: b.length, sha256: sha(b) }));
  const created = await parent.call('POST', '/packages', { name: 'tool', version: '1', files: manifest });
  const id = created.body.id as string;
  for (const [path, b] of Object.entries(FILES)) expect((await apiFetch(parent.core.url, parent.core.adminToken, 'PUT', `/packages/${id}/files/${path}`, b)).status).toBe(200);
  const join = async (): Promise<void> => {
    const url = (await parent.call('GET', '/hierarchy')).body.listener as string;
    const token = (await parent.call('POST', '/hierarchy/tokens', {})).body.token as string;
    expect((await child.call('POST', '/hierarchy/join', { url, token })).status).toBe(200);
  };
  return { dir, parent, child, hq, bu, bc, id, join };
}

const allReady = async (side: Side, id: string, n: number): Promise<any> => {
  const v = await side.call('GET', `/packages/${id}`);
  return v.status === 200 && v.body.servers.length === n && v.body.servers.every((s: { state: string }) => s.state === 'ready') && v.body;
};

/** The file as a package server serves it. */
const served = async (ps: PackageServer, id: string, path: string): Promise<string> => sha(Buffer.from(await (await fetch(`${ps.url}/packages/${id}/${path}`)).arrayBuffer()));

describe("packages down the hierarchy: the child's package servers stage them from the parent's", () => {
  it("the child's unconstrained server fetches from the parent's package server, the constrained one inside its site; no content on the link", async () => {
    const h = await hierarchy({ parentServer: true });
    // Joined before the enable: the child knows the package while the parent's server still stages it, and waits for it.
    await h.join();
    expect((await h.parent.call('POST', `/packages/${h.id}/enable`, {})).status).toBe(200);
    await waitFor(() => allReady(h.parent, h.id, 1), { timeoutMs: 30_000, what: "ready on the parent's package server" });
    const v = await waitFor(() => allReady(h.child, h.id, 2), { timeoutMs: 30_000, what: "ready on the child's package servers" });
    // The child core does not hold the content: marked from upstream, its files not here, the core not a codebase.
    expect(v).toMatchObject({ state: 'incomplete', upstream: expect.stringMatching(/^core_/), enabled: true });
    const codebases = (await h.child.call('GET', `/packages/${h.id}/codebases`)).body.items as Array<{ kind: string }>;
    expect(codebases.map((c) => c.kind)).toEqual(['package-server', 'package-server']);
    // Every byte into the child's site came from the parent's package server, once; the constrained server took it from the unconstrained one.
    expect(stats(h.bu).fetchedFrom).toEqual({ [h.hq!.id!]: { bytes: SIZE, files: 2 } });
    expect(stats(h.hq!).http.bytesTo[h.bu.id!]).toBe(SIZE);
    expect(stats(h.bc).fetchedFrom).toEqual({ [h.bu.id!]: { bytes: SIZE, files: 2 } });
    expect(stats(h.hq!).http.bytesTo[h.bc.id!]).toBeUndefined();
    // The child core's link carried no content either way.
    expect((await h.parent.call('GET', '/hierarchy')).body.children[0].bytes.content).toBe(0);
    expect((await h.child.call('GET', '/hierarchy')).body.parent.bytes.content).toBe(0);
    for (const [path, b] of Object.entries(FILES)) expect(await served(h.bc, h.id, path)).toBe(sha(b));
    // The package's status on each of the child's servers goes up to the parent (its hier-up record, read from its store once it stopped).
    const childId = (await h.child.call('GET', '/hierarchy')).body.core.id as string;
    await new Promise((r) => setTimeout(r, 1_000));
    await h.parent.core.stop();
    const db = await openDatabase(join(h.dir, 'hq'));
    try {
      const up = (await db.sublevel<string, any>('hier-up', { valueEncoding: 'json' }).get(`${childId}!package!${h.id}`)) as { enabled: boolean; upstream?: boolean; servers: Array<{ name: string; state: string }> };
      expect(up.enabled).toBe(true);
      // The child core holds no content of it: staged from upstream, and it says so.
      expect(up.upstream).toBe(true);
      expect(up.servers.map((s) => [s.name, s.state]).sort()).toEqual([['branch-ps', 'ready'], ['branch-ps-c', 'ready']]);
    } finally {
      await db.close();
    }
  }, 90_000);

  it("a parent's package server serving wrong bytes is refused by hash; the child core fetches the content from the parent and its servers end ready", async () => {
    const h = await hierarchy({ parentServer: true, parentServerExtra: { watchStore: false } });
    expect((await h.parent.call('POST', `/packages/${h.id}/enable`, {})).status).toBe(200);
    await waitFor(() => allReady(h.parent, h.id, 1), { timeoutMs: 30_000, what: "ready on the parent's package server" });
    // The parent's server now serves other bytes of the same size for the big file (its store is not watched).
    const big = FILES['bin/big.bin']!;
    await writeFile(join(h.dir, 'hq-ps', 'content', 'sha256', sha(big).slice(0, 2), sha(big)), randomBytes(big.length));
    expect(await served(h.hq!, h.id, 'bin/big.bin')).not.toBe(sha(big));
    await h.join();
    await waitFor(() => allReady(h.child, h.id, 2), { timeoutMs: 45_000, what: "ready on the child's package servers" });
    for (const [path, b] of Object.entries(FILES)) {
      expect(await served(h.bu, h.id, path)).toBe(sha(b));
      expect(await served(h.bc, h.id, path)).toBe(sha(b));
    }
    // The wrong bytes were fetched (and refused); the big file then came from the child core, which fetched the package from the parent over the link.
    expect(stats(h.hq!).http.bytesTo[h.bu.id!]).toBeGreaterThanOrEqual(big.length);
    expect(stats(h.bu).fetchedFrom.core?.bytes).toBeGreaterThanOrEqual(big.length);
    expect((await h.parent.call('GET', '/hierarchy')).body.children[0].bytes.content).toBe(SIZE);
    const v = (await h.child.call('GET', `/packages/${h.id}`)).body;
    expect(v.state).toBe('ready');
  }, 90_000);

  it('with no package server on the parent, the child core fetches the content from the parent in the background and its servers stage it from there', async () => {
    const h = await hierarchy({ parentServer: false });
    await h.join();
    expect((await h.parent.call('POST', `/packages/${h.id}/enable`, {})).status).toBe(200);
    await waitFor(() => allReady(h.child, h.id, 2), { timeoutMs: 30_000, what: "ready on the child's package servers" });
    expect((await h.parent.call('GET', '/hierarchy')).body.children[0].bytes.content).toBe(SIZE);
    expect((await h.child.call('GET', `/packages/${h.id}`)).body.state).toBe('ready');
    expect(stats(h.bu).fetchedFrom).toEqual({ core: { bytes: SIZE, files: 2 } });
    expect(stats(h.bc).fetchedFrom).toEqual({ [h.bu.id!]: { bytes: SIZE, files: 2 } });
    // Held by the core now: it is listed last among the codebases.
    const codebases = (await h.child.call('GET', `/packages/${h.id}/codebases`)).body.items as Array<{ kind: string }>;
    expect(codebases.map((c) => c.kind)).toEqual(['package-server', 'package-server', 'core']);
  }, 90_000);
});
