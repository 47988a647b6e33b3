import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { createPackageServer, packageServerConfigSchema, type PackageServer, type PackageServerConfigInput } from '@outpost/package-server';
import { createCoreClient, downloadPackage } from '@outpost/agent';
import { apiFetch } from './fixtures/e2e.js';
import { e2eGate, freePort, grantFor, removeDir, tempDir, waitFor } from '@outpost/testing';

/** Runs a client without blocking the event loop (the servers live in this process). */
function run(cmd: string, args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'buffer', timeout: 20_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Doc {
  readonly [k: string]: Doc;
}
const list = (d: Doc): Doc[] => d as unknown as Doc[];
const str = (d: Doc | undefined): string => d as unknown as string;

const FILES: Record<string, Buffer> = {
  'bin/big.bin': randomBytes(3 * 1024 * 1024 + 17),
  'etc/config.txt': Buffer.from('setting = 1\n'),
  'docs/read me.txt': Buffer.from('spaces in names are fine\n'),
  'empty.dat': Buffer.alloc(0),
};

describe('packages end to end: core, HQ and branch package servers, branch agents', () => {
  let dir: string;
  let core: Core;
  let corePort: number;
  let datagramPort: number;
  const servers: Record<'hq' | 'bu' | 'bc', PackageServer> = {} as Record<'hq' | 'bu' | 'bc', PackageServer>;
  let pkgId: string;

  const coreConfig = (port: number, dgram: number) =>
    validateConfig(
      coreConfigSchema,
      { dataDir: join(dir, 'core'), http: { host: '127.0.0.1', port }, datagram: { host: '127.0.0.1', port: dgram }, siteServers: { heartbeatInterval: '2s' } },
      { file: '<test>' },
    );

  async function call(method: string, path: string, body?: unknown, bearer = core.adminToken): Promise<{ status: number; json: Doc }> {
    const res = await apiFetch(core.url, bearer, method, path, body);
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as Doc };
  }

  async function addPackage(name: string, files: Record<string, Buffer>): Promise<string> {
    const manifest = Object.entries(files).map(([path, b]) => ({ path, size: b.length, sha256: sha(b) }));
    const created = await call('POST', '/packages', { name, version: '1', files: manifest });
    const id = str(created.json.id);
    for (const [path, b] of Object.entries(files)) {
      const r = await call('PUT', `/packages/${id}/files/${path.split('/').map(encodeURIComponent).join('/')}`, b);
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    }
    return id;
  }

  const psConfig = (name: string, constrained: boolean, address: string, token: string, extra: Partial<PackageServerConfigInput> = {}) =>
    validateConfig(
      packageServerConfigSchema,
      {
        name,
        coreUrl: core.url,
        dataDir: join(dir, name),
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
    );

  /** A package server's token: its `constrained`, its site address (membership) and loopback (its URLs). */
  const packageToken = async (constrained: boolean, address: string): Promise<string> =>
    (await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ package: { constrained } }, { address, addresses: ['127.0.0.1'] }) })).token;

  const view = async (id: string): Promise<Doc> => (await call('GET', `/packages/${id}`)).json;
  const allReady = (v: Doc): boolean => list(v.servers).length > 0 && list(v.servers).every((s) => str(s.state) === 'ready');

  beforeAll(async () => {
    dir = await tempDir('outpost-pkg-e2e-');
    // Ports below the ephemeral range: the core restarts on them mid-test, and a port-0
    // port could meanwhile be another test's outgoing connection (EADDRINUSE, seen on CI).
    corePort = await freePort('tcp');
    datagramPort = await freePort('udp');
    core = createCore(coreConfig(corePort, datagramPort));
    await core.start();
    await call('POST', '/sites', { name: 'hq', subnets: ['10.1.0.0/16'] });
    await call('POST', '/sites', { name: 'branch', subnets: ['10.2.0.0/16'] });
    servers.hq = createPackageServer(psConfig('hq-ps', false, '10.1.0.5/24', await packageToken(false, '10.1.0.5/24')));
    servers.bu = createPackageServer(psConfig('branch-ps', false, '10.2.0.5/24', await packageToken(false, '10.2.0.5/24')));
    servers.bc = createPackageServer(psConfig('branch-ps-c', true, '10.2.0.6/24', await packageToken(true, '10.2.0.6/24')));
    await Promise.all(Object.values(servers).map((s) => s.start()));
    pkgId = await addPackage('demo', FILES);
  });

  afterAll(async () => {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
    await core?.stop();
    await removeDir(dir);
  });

  it('stages to every server; each file enters the branch once; the constrained server fetches only inside its site', async () => {
    const enabled = await call('POST', `/packages/${pkgId}/enable`, {});
    expect(enabled.status).toBe(200);
    const v = await waitFor(async () => {
      const x = await view(pkgId);
      return allReady(x) && x;
    }, { timeoutMs: 45_000, what: 'every package server ready' });
    const size = Object.values(FILES).reduce((n, b) => n + b.length, 0);
    const byName = new Map(list(v.servers).map((s) => [str(s.name), s]));
    expect(str(byName.get('branch-ps-c')!.codebase)).toBe(`${servers.bc.url}/packages/${pkgId}`);
    const st = (s: PackageServer) => s.stats() as unknown as { fetchedFrom: Record<string, { bytes: number; files: number }>; http: { bytesTo: Record<string, number> } };
    // Branch unconstrained: everything from the core, once.
    expect(Object.keys(st(servers.bu).fetchedFrom)).toEqual(['core']);
    expect(st(servers.bu).fetchedFrom.core).toEqual({ bytes: size, files: Object.keys(FILES).length });
    // Constrained: only from the branch's unconstrained server, never the core or HQ.
    expect(st(servers.bc).fetchedFrom).toEqual({ [servers.bu.id!]: { bytes: size, files: Object.keys(FILES).length } });
    expect(st(servers.bu).http.bytesTo[servers.bc.id!]).toBe(size);
    // HQ came from the core; the core served each unconstrained server exactly once.
    expect(Object.keys(st(servers.hq).fetchedFrom)).toEqual(['core']);
    const coreStats = core.stats() as unknown as { packages: { servedByPrincipal: Record<string, number> } };
    expect(coreStats.packages.servedByPrincipal).toEqual({ [servers.bu.id!]: size, [servers.hq.id!]: size });
    expect(st(servers.hq).http.bytesTo[servers.bc.id!]).toBeUndefined();
  });

  it('gives branch agents branch codebases first and they download from the branch, verified', async () => {
    const { token } = await core.createEnrollmentToken({ for: 'agent', uses: 2 });
    const enroll = await fetch(`${core.url}/api/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token, name: 'branch-pc', ips: ['10.2.3.4/16'] }),
    });
    const agent = (await enroll.json()) as { id: string; credential: string };
    const cbs = await call('GET', `/packages/${pkgId}/codebases?agent=${agent.id}`, undefined, agent.credential);
    const urls = list(cbs.json.items).map((i) => str(i.url));
    expect(urls.slice(0, 2).sort()).toEqual([`${servers.bu.url}/packages/${pkgId}`, `${servers.bc.url}/packages/${pkgId}`].sort());
    expect(urls.at(-1)).toBe(`${core.url}/api/v1/packages/${pkgId}/files`);
    const client = createCoreClient({ coreUrl: core.url });
    const dest = join(dir, 'agent-dl');
    const result = await downloadPackage({ client, bearer: agent.credential, agentId: agent.id, package: 'demo', destDir: dest });
    client.close();
    expect(Object.keys(result.fromCodebase).every((u) => u === urls[0])).toBe(true);
    for (const [path, b] of Object.entries(FILES)) expect(sha(await readFile(join(dest, ...path.split('/'))))).toBe(sha(b));
    expect((await view(pkgId)).downloads.ok).toBe(1);
  });

  it('refuses traversal in URLs (.., encoded, absolute) and never follows a symlink in the store', async () => {
    const base = servers.bc.url;
    const raw = async (target: string): Promise<number> => {
      const { request } = await import('node:http');
      const u = new URL(base);
      return new Promise((resolve, reject) => {
        const req = request({ host: u.hostname, port: u.port, path: target, method: 'GET' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    };
    expect(await raw(`/packages/${pkgId}/../../../../etc/passwd`)).toBe(400);
    expect(await raw(`/packages/${pkgId}/%2e%2e/%2e%2e/etc/passwd`)).toBe(400);
    expect(await raw(`/packages/${pkgId}/bin%2Fbig.bin`)).toBe(400);
    expect(await raw(`/packages/${pkgId}/..%2F..%2Fetc%2Fpasswd`)).toBe(400);
    expect(await raw(`http://evil/packages/${pkgId}/etc/config.txt`)).toBe(400);
    expect(await raw(`/packages/${pkgId}//etc/passwd`)).toBe(400);
    expect(await raw(`/packages/${pkgId}/etc/passwd`)).toBe(404);
    expect(await raw(`/packages/${pkgId}/etc/config.txt`)).toBe(200);
    // Replace a stored content file of the HQ server with a symlink to a file outside the store.
    const hqSha = sha(FILES['etc/config.txt']!);
    const stored = join(dir, 'hq-ps', 'content', 'sha256', hqSha.slice(0, 2), hqSha);
    const outside = join(dir, 'outside.txt');
    await writeFile(outside, 'secret outside the store');
    await rm(stored);
    await symlink(outside, stored);
    const res = await fetch(`${servers.hq.url}/packages/${pkgId}/etc/config.txt`);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain('secret');
    // The store watcher (or the failed read) makes the server withdraw and re-stage it.
    await waitFor(async () => (await fetch(`${servers.hq.url}/packages/${pkgId}/etc/config.txt`)).status === 200, { timeoutMs: 45_000, what: 'HQ re-staged the file' });
    expect(sha(Buffer.from(await (await fetch(`${servers.hq.url}/packages/${pkgId}/etc/config.txt`)).arrayBuffer()))).toBe(sha(FILES['etc/config.txt']!));
  });

  const gate = e2eGate('packages e2e: real clients', { commands: ['curl', 'aria2c'] });
  it.runIf(gate.run)('curl (-C - resume, -r ranges, HEAD) and aria2c download identical bytes with ETag = sha256', async () => {
    const url = `${servers.bc.url}/packages/${pkgId}/bin/big.bin`;
    const big = FILES['bin/big.bin']!;
    const out = join(dir, 'curl');
    await mkdir(out, { recursive: true });
    const head = (await run('curl', ['-sSI', url])).toString();
    expect(head).toMatch(new RegExp(`etag: "${sha(big)}"`, 'i'));
    expect(head).toMatch(new RegExp(`content-length: ${big.length}`, 'i'));
    expect(head).toMatch(/accept-ranges: bytes/i);
    await writeFile(join(out, 'big.bin'), big.subarray(0, 1_000_000));
    await run('curl', ['-sSf', '-C', '-', '-o', join(out, 'big.bin'), url]);
    expect(sha(await readFile(join(out, 'big.bin')))).toBe(sha(big));
    const part = await run('curl', ['-sSf', '-r', '100-199', url]);
    expect(part.equals(big.subarray(100, 200))).toBe(true);
    const suffix = await run('curl', ['-sSf', '-r', '-10', url]);
    expect(suffix.equals(big.subarray(big.length - 10))).toBe(true);
    const status = (await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-r', `${big.length + 5}-`, url])).toString();
    expect(status).toBe('416');
    const notModified = (await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `If-None-Match: "${sha(big)}"`, url])).toString();
    expect(notModified).toBe('304');
    await run('aria2c', ['-q', '-x4', '-s4', '-k1M', '--allow-overwrite=true', '--auto-file-renaming=false', '-d', out, '-o', 'aria.bin', url]);
    expect(sha(await readFile(join(out, 'aria.bin')))).toBe(sha(big));
    const spaced = await run('curl', ['-sSf', `${servers.bc.url}/packages/${pkgId}/docs/read%20me.txt`]);
    expect(spaced.equals(FILES['docs/read me.txt']!)).toBe(true);
  });

  it('keeps serving while the core is down during staging, and finishes staging when it is back', async () => {
    // Two files: the core stops during the first (it lets that response run up to 2 s), so
    // the first or the second fails. Staging at 512 KiB/s leaves ~6 s to stop the core
    // before it could finish, however slow this machine is at noticing that it started.
    const slowFiles = { 'slow.bin': randomBytes(1536 * 1024), 'slow2.bin': randomBytes(1536 * 1024) };
    const id = await addPackage('slow', slowFiles);
    // Stage to HQ only, slowed down, and take the core away mid-way.
    const token = await packageToken(false, '10.1.0.9/24');
    const slow = createPackageServer(psConfig('hq-slow', false, '10.1.0.9/24', token, { bandwidth: { staging: 512 * 1024, serving: 0 } }));
    await slow.start();
    try {
      await call('POST', `/packages/${id}/enable`, { servers: [slow.id!] });
      const slowStatus = (): { state?: string; bytesDone?: number; error?: string } =>
        (slow.stats() as unknown as { packages: { status?: { state: string; bytesDone: number; error?: string } }[] }).packages[0]?.status ?? {};
      await waitFor(() => (slowStatus().bytesDone ?? 0) > 0, { timeoutMs: 30_000, what: 'staging under way' });
      await core.stop();
      // Package servers still serve what they have.
      const cfg = await fetch(`${servers.bc.url}/packages/${pkgId}/etc/config.txt`);
      expect(cfg.status).toBe(200);
      await waitFor(() => slowStatus().state === 'failed', { timeoutMs: 30_000, what: 'staging failed while the core is down' });
      expect(slowStatus().error).toMatch(/ECONNREFUSED|core|broke/i);
      core = createCore(coreConfig(corePort, datagramPort));
      await core.start();
      const v = await waitFor(async () => {
        const x = await view(id);
        return allReady(x) && x;
      }, { timeoutMs: 45_000, what: 'staging finished after the core came back' });
      expect(list(v.servers)[0]!.codebase).toBeDefined();
      const got = Buffer.from(await (await fetch(`${slow.url}/packages/${id}/slow.bin`)).arrayBuffer());
      expect(sha(got)).toBe(sha(slowFiles['slow.bin']));
      expect(slowStatus().state).toBe('ready');
    } finally {
      await slow.stop();
    }
  }, 120_000);

  it('after kill -9 mid-staging never serves a partial file and resumes where it was', async () => {
    const files = { 'large.bin': randomBytes(6 * 1024 * 1024) };
    const id = await addPackage('killme', files);
    const token = await packageToken(false, '10.1.0.10/24');
    const port = await freePort();
    const cfg = {
      name: 'hq-kill',
      coreUrl: core.url,
      dataDir: join(dir, 'hq-kill'),
      enrollToken: token,
      address: '10.1.0.10/24',
      http: { host: '127.0.0.1', port },
      tickle: { host: '127.0.0.1', port: 0 },
      retry: { base: '300ms', cap: '2s' },
      reserveBytes: 0,
      // 1 MiB/s: from 1 MiB in the partial to the whole 6 MiB leaves ~5 s to kill it mid-file.
      bandwidth: { staging: 1024 * 1024, serving: 0 },
    };
    const startChild = async (): Promise<{ child: ChildProcess; id: string }> => {
      const child = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'package-server-child.mjs'), JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
      const line = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout!.on('data', (c: Buffer) => {
          buf += c.toString();
          if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
        });
        child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
      });
      return { child, id: (JSON.parse(line) as { id: string }).id };
    };
    const url = `http://127.0.0.1:${port}/packages/${id}/large.bin`;
    let { child, id: serverId } = await startChild();
    try {
      await call('POST', `/packages/${id}/enable`, { servers: [serverId] });
      const stats = async (): Promise<{ packages?: number; status?: Record<string, number> } & Doc> => (await (await fetch(`http://127.0.0.1:${port}/api/v1/stats`)).json()) as Doc;
      const partial = join(dir, 'hq-kill', 'content', 'tmp', `${sha(files['large.bin'])}.part`);
      await waitFor(async () => ((await stat(partial).catch(() => undefined))?.size ?? 0) > 1024 * 1024, { timeoutMs: 30_000, what: 'a partial of > 1 MiB' });
      expect((await stats()).packages).toBe(0);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const before = (await readFile(partial)).length;
      ({ child } = await startChild());
      // Right after the restart: the partial is not served.
      expect((await fetch(url)).status).toBe(404);
      await waitFor(async () => (await fetch(url)).status === 200, { timeoutMs: 45_000, what: 'staging resumed and finished' });
      const got = Buffer.from(await (await fetch(url)).arrayBuffer());
      expect(sha(got)).toBe(sha(files['large.bin']));
      const after = (await (await fetch(`${core.url}/api/v1/stats`, { headers: { authorization: `Bearer ${core.adminToken}` } })).json()) as Doc;
      // The core counts the bytes each response promised: the first (cut by the kill) the
      // whole file, the second only what was missing: the restart resumed at the partial.
      const served = after.packages.servedByPrincipal[serverId] as unknown as number;
      const size = files['large.bin'].length;
      expect(before).toBeGreaterThan(1024 * 1024);
      expect(served).toBeLessThanOrEqual(2 * size - before + 256 * 1024);
    } finally {
      child.kill('SIGKILL');
    }
  }, 120_000);
});
