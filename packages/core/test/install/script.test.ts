import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasCommand } from '@outpost/testing';
import { cleanup, createToken, enrollSiteServer, newDataDir, startCore, type TestCore } from '../integration/harness.js';

// The installer as a machine runs it (real sh, curl, openssl against a real core), for
// what it must refuse before anything is installed. The install itself is proven with the
// real single-file agent in test/install-link-e2e.test.ts.

const AGENT = '#!/bin/sh\nexit 0\n';
let tc: TestCore;
let dir: string;
let prefix: string;

beforeEach(async () => {
  const base = await newDataDir();
  dir = join(base, 'artifacts');
  prefix = join(base, 'prefix');
  await mkdir(dir);
  await writeFile(join(dir, 'outpost-agent-linux-x64'), AGENT);
  tc = await startCore({ config: { install: { dir } } });
});
afterEach(cleanup);

function sh(script: string, env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('sh', ['-s'], { env: { ...process.env, OUTPOST_PREFIX: prefix, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out, err }));
    p.stdin.end(script);
  });
}
const fetchScript = async (): Promise<string> => (await fetch(`${tc.url}/install/agent.sh?token=${await createToken(tc, 'agent')}`)).text();

describe.skipIf(!hasCommand('curl') || !hasCommand('openssl'))('the installer script', () => {
  it('refuses anything but Linux x86_64 with exit 3, installing nothing', async () => {
    const bin = join(prefix, '..', 'fake-bin');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'uname'), '#!/bin/sh\nif [ "$1" = -s ]; then echo Darwin; else echo arm64; fi\n');
    await chmod(join(bin, 'uname'), 0o755);
    const r = await sh(await fetchScript(), { PATH: `${bin}:${process.env.PATH ?? ''}` });
    expect(r.code).toBe(3);
    expect(r.err).toContain('unsupported OS: Darwin arm64');
    expect(existsSync(prefix)).toBe(false);
  });

  it('refuses a download whose sha256 is not the signed one (exit 4), installing nothing', async () => {
    const script = await fetchScript();
    await writeFile(join(dir, 'outpost-agent-linux-x64'), '#!/bin/sh\necho swapped after signing\n');
    const r = await sh(script);
    expect(r.err).toContain('manifest signature verified');
    expect(r.err).toMatch(/outpost-agent-linux-x64: sha256 [0-9a-f]{64}, but the core signed [0-9a-f]{64}/);
    expect(r.code).toBe(4);
    expect(existsSync(join(prefix, 'bin', 'outpost-agent'))).toBe(false);
  });

  it("refuses a manifest whose signature does not verify with the core's work key (exit 4)", async () => {
    const script = await fetchScript();
    const swapped = '0'.repeat(64);
    const tampered = script.replace(/^([0-9a-f]{64}) (\d+ outpost-agent-linux-x64)$/m, `${swapped} $2`);
    expect(tampered).not.toBe(script);
    const r = await sh(tampered);
    expect(r.err).toContain("signature does not verify with the core's work-signing key");
    expect(r.code).toBe(4);
    expect(existsSync(join(prefix, 'bin', 'outpost-agent'))).toBe(false);
  });
});

/** An HTTP server on 127.0.0.1 answering every GET with `body` (or closing when `body` is undefined); counts requests. */
async function mirror(body: string | undefined): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (body === undefined) return void res.socket?.destroy();
    res.end(body);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, close: () => new Promise((r) => server.close(() => r(undefined))) };
}

/**
 * A package server of site `branch` as a compromised branch box would be one: enrolled with
 * its own credential, its package URL at `url`, reporting the install package ready.
 */
async function branchServer(url: string): Promise<void> {
  const ss = await enrollSiteServer(tc, 'branch-ps', { address: '10.9.0.5/24', services: { package: { constrained: false, url } } });
  const staged = await tc.call('POST', '/install/stage', { body: { site: 'branch' } });
  expect(staged.status, JSON.stringify(staged.body)).toBe(200);
  expect(staged.body.servers).toEqual([{ id: ss.id, name: 'branch-ps', state: expect.stringMatching(/pending|downloading/) }]);
  const pkg = (await tc.call('GET', `/packages/${staged.body.package.id}`)).body;
  const r = await tc.call('POST', `/package-servers/${ss.id}/status`, {
    token: ss.credential,
    body: { items: [{ id: pkg.id, manifestHash: pkg.manifestHash, state: 'ready', bytesDone: pkg.size, bytesTotal: pkg.size }] },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

describe.skipIf(!hasCommand('curl') || !hasCommand('openssl'))("the installer and the site's package servers", () => {
  beforeEach(async () => {
    expect((await tc.call('POST', '/sites', { body: { name: 'branch', subnets: ['10.9.0.0/16'] } })).status).toBe(201);
  });
  const installed = async (): Promise<string> => createHash('sha256').update(await readFile(join(prefix, 'bin', 'outpost-agent'))).digest('hex');
  const signed = createHash('sha256').update(AGENT).digest('hex');

  it("downloads from the site's package server when it serves the signed bytes", async () => {
    const m = await mirror(AGENT);
    try {
      await branchServer(m.url);
      const script = await (await fetch(`${tc.url}/install/agent.sh?token=${await createToken(tc, 'agent', { site: 'branch' })}`)).text();
      expect(script).toMatch(/^MIRRORS='http:\/\/127\.0\.0\.1:\d+\/packages\/pk_[0-9a-f]+'$/m);
      const r = await sh(script);
      expect(r.err).toMatch(/outpost-agent-linux-x64: sha256 verified \(from the site's package server http:\/\/127\.0\.0\.1:\d+\/packages\/pk_[0-9a-f]+\)/);
      expect(m.requests).toEqual([expect.stringMatching(/^\/packages\/pk_[0-9a-f]+\/outpost-agent-linux-x64$/)]);
      expect(await installed()).toBe(signed);
    } finally {
      await m.close();
    }
  });

  it('never installs what a hostile package server of the site sends: other bytes are refused by the signed sha256 and the core serves the file', async () => {
    const m = await mirror('#!/bin/sh\necho owned by the branch box\n');
    try {
      await branchServer(m.url);
      const r = await sh(await (await fetch(`${tc.url}/install/agent.sh?token=${await createToken(tc, 'agent', { site: 'branch' })}`)).text());
      expect(m.requests).toHaveLength(1);
      expect(r.err).toMatch(/outpost-agent-linux-x64 from http:\/\/127\.0\.0\.1:\d+\/packages\/pk_[0-9a-f]+: sha256 [0-9a-f]{64}, but the core signed [0-9a-f]{64}; not used/);
      expect(r.err).toMatch(/outpost-agent-linux-x64: sha256 verified\n/);
      expect(await installed()).toBe(signed);
    } finally {
      await m.close();
    }
  });

  it('skips a package server that does not answer and takes the file from the core', async () => {
    const m = await mirror(undefined);
    try {
      await branchServer(m.url);
      const r = await sh(await (await fetch(`${tc.url}/install/agent.sh?token=${await createToken(tc, 'agent', { site: 'branch' })}`)).text());
      expect(r.err).toMatch(/the site's package server http:\/\/127\.0\.0\.1:\d+\/packages\/pk_[0-9a-f]+ did not serve it/);
      expect(await installed()).toBe(signed);
    } finally {
      await m.close();
    }
  });

  it("gives mirrors only to the site's tokens: none for a token without a site", async () => {
    const m = await mirror(AGENT);
    try {
      await branchServer(m.url);
      const script = await (await fetch(`${tc.url}/install/agent.sh?token=${await createToken(tc, 'agent')}`)).text();
      expect(script).toMatch(/^MIRRORS=''$/m);
    } finally {
      await m.close();
    }
  });
});
