import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasCommand } from '@outpost/testing';
import { cleanup, createToken, newDataDir, startCore, type TestCore } from '../integration/harness.js';

// The installer as a machine runs it (real sh, curl, openssl against a real core), for
// what it must refuse before anything is installed. The install itself is proven with the
// real single-file agent in test/install-link-e2e.test.ts.

let tc: TestCore;
let dir: string;
let prefix: string;

beforeEach(async () => {
  const base = await newDataDir();
  dir = join(base, 'artifacts');
  prefix = join(base, 'prefix');
  await mkdir(dir);
  await writeFile(join(dir, 'outpost-agent-linux-x64'), '#!/bin/sh\nexit 0\n');
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
