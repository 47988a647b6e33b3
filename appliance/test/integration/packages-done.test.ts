// The package service's "done when", end to end with real processes: `outpost start` on
// a temp copy of configs/all-in-one.yaml (every port 0, data under the temp dir), then
// `outpost package add DIR --name demo`, `outpost package enable demo`, and within
// seconds `outpost package show demo --json` has every package server ready with a
// codebase; curl on that codebase gets the same bytes with ETag = the sha256.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readConfigFile } from '@outpost/common';
import { e2eGate, loopbackConfig, removeDir, tempDir, waitFor } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startOutpost, type Running } from '../helpers.js';

const withinMs = (ms: number): number => Math.round(ms * Math.max(1, loadavg()[0]! / cpus().length));
const gate = e2eGate('package service done-when', { commands: ['curl'] });
const ALL_IN_ONE = fileURLToPath(new URL('../../../configs/all-in-one.yaml', import.meta.url));
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const FILES: Record<string, Buffer> = {
  'setup.bin': randomBytes(5 * 1024 * 1024 + 3),
  'conf/settings.ini': Buffer.from('[demo]\nenabled = true\n'),
};

function curl(args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '20', ...args], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

describe.runIf(gate.run)('outpost package add / enable / show on a running all-in-one appliance', () => {
  let dir: string;
  let outpost: Running | undefined;
  let env: Record<string, string>;
  const cli = (...args: string[]) => runCli(args, { cwd: dir, env, timeoutMs: 30_000 });

  beforeAll(async () => {
    dir = await tempDir('outpost-pkg-done-');
    const raw = await readConfigFile(ALL_IN_ONE);
    const config = loopbackConfig({ ...raw, log: { level: 'warn' } }, 'http://127.0.0.1:8080');
    expect(config.packageServer, 'all-in-one runs a package server').toBeDefined();
    await mkdir(join(dir, 'configs'));
    await writeFile(join(dir, 'configs', 'test.json'), JSON.stringify(config, null, 2));
    for (const [path, b] of Object.entries(FILES)) {
      await mkdir(join(dir, 'demo', ...path.split('/').slice(0, -1)), { recursive: true });
      await writeFile(join(dir, 'demo', ...path.split('/')), b);
    }
    outpost = startOutpost(['--config', 'configs/test.json'], { cwd: dir });
    const url = await outpost.banner(30_000);
    env = { OUTPOST_URL: url, OUTPOST_TOKEN: (await readFile(join(dir, 'var', 'core', 'admin-token'), 'utf8')).trim() };
  }, 60_000);

  afterAll(async () => {
    const stopped = await outpost?.stop('SIGINT', 20_000);
    await removeDir(dir);
    expect(stopped?.code).toBe(0);
  }, 30_000);

  it('add, enable, and within seconds every package server is ready; curl gets the same bytes, ETag = sha256', async () => {
    const add = await cli('package', 'add', join(dir, 'demo'), '--name', 'demo');
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/^package demo@\w+ \(pk_\w+\): 2 files, 5\.0 MiB, ready/);

    const enable = await cli('package', 'enable', 'demo');
    expect(enable.code, enable.stderr).toBe(0);
    const t0 = Date.now();
    type Show = { state: string; servers: { name: string; state: string; codebase?: string }[] };
    const view = await waitFor(
      async () => {
        const r = await cli('package', 'show', 'demo', '--json');
        const v = JSON.parse(r.stdout) as Show;
        return v.servers.length > 0 && v.servers.every((s) => s.state === 'ready' && s.codebase) && v;
      },
      { timeoutMs: 45_000, what: 'every package server ready with a codebase' },
    );
    // "Within seconds": 10 s on an idle machine, scaled by the load of a busy one.
    expect(Date.now() - t0).toBeLessThan(withinMs(10_000));
    expect(view.servers.map((s) => s.name)).toEqual(['local-packages']);

    for (const s of view.servers) {
      for (const [path, b] of Object.entries(FILES)) {
        const url = `${s.codebase!}/${path}`;
        expect(sha(await curl([url]))).toBe(sha(b));
        const head = (await curl(['-I', url])).toString('latin1');
        expect(head).toMatch(/^HTTP\/1\.1 200/);
        expect(/^etag: "([0-9a-f]{64})"\r?$/im.exec(head)?.[1]).toBe(sha(b));
        expect(head).toMatch(new RegExp(`^content-length: ${b.length}\\r?$`, 'im'));
      }
    }
    const table = await cli('package', 'show', 'demo');
    expect(table.stdout).toMatch(/local-packages\s+unconstrained\s+ready\s+5\.0 MiB\/5\.0 MiB 100%/);
  }, 120_000);
});
