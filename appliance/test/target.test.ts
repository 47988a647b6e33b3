import { spawn } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveTarget } from '@outpost/appliance';
import { isOutpostError } from '@outpost/common';
import { isRoot, removeDir, tempDir } from '@outpost/testing';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

let dir: string;
beforeEach(async () => {
  dir = await tempDir('outpost-target-');
});
afterEach(async () => {
  await removeDir(dir);
});

async function writeAllInOne(port: number, token?: string): Promise<void> {
  await mkdir(join(dir, 'configs'), { recursive: true });
  await writeFile(join(dir, 'configs', 'all-in-one.yaml'), `core:\n  dataDir: ./var/core\n  http:\n    host: 0.0.0.0\n    port: ${port}\n`);
  if (token !== undefined) {
    await mkdir(join(dir, 'var', 'core'), { recursive: true });
    await writeFile(join(dir, 'var', 'core', 'admin-token'), `${token}\n`, { mode: 0o600 });
  }
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isOutpostError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'resolved';
}

describe('resolveTarget', () => {
  it("finds the local core through ./configs/all-in-one.yaml and reads its admin token", async () => {
    await writeAllInOne(8181, 'admin.secret-one');
    expect(await resolveTarget({}, { cwd: dir, env: {} })).toEqual({ url: 'http://127.0.0.1:8181', token: 'admin.secret-one', source: join('configs', 'all-in-one.yaml') });
  });

  it('prefers --url/--token, then OUTPOST_URL/OUTPOST_TOKEN, over the local core', async () => {
    await writeAllInOne(8181, 'admin.local');
    const env = { OUTPOST_URL: 'http://core.example:8080/', OUTPOST_TOKEN: 'admin.env' };
    expect(await resolveTarget({}, { cwd: dir, env })).toMatchObject({ url: 'http://core.example:8080', token: 'admin.env' });
    expect(await resolveTarget({ url: 'http://other:1', token: 'admin.flag' }, { cwd: dir, env })).toMatchObject({ url: 'http://other:1', token: 'admin.flag', source: '--url' });
  });

  it('takes several core URLs from OUTPOST_URL (comma-separated) or repeated --url, first one current', async () => {
    const env = { OUTPOST_URL: 'http://core-a:8080/, http://core-b:8080,', OUTPOST_TOKEN: 'admin.env' };
    expect(await resolveTarget({}, { cwd: dir, env })).toEqual({ url: 'http://core-a:8080', urls: ['http://core-a:8080', 'http://core-b:8080'], token: 'admin.env', source: 'OUTPOST_URL' });
    expect(await resolveTarget({ url: ['http://core-c:1', 'http://core-d:2'] }, { cwd: dir, env })).toMatchObject({ url: 'http://core-c:1', urls: ['http://core-c:1', 'http://core-d:2'], source: '--url' });
    expect(await code(resolveTarget({}, { cwd: dir, env: { ...env, OUTPOST_URL: 'http://core-a:8080,core-b' } }))).toMatch(/^APPLIANCE_NO_CREDENTIALS: OUTPOST_URL 'core-b' is not a URL/);
  });

  it("never sends the local admin token to another URL", async () => {
    await writeAllInOne(8181, 'admin.local');
    expect(await code(resolveTarget({ url: 'http://elsewhere:8080' }, { cwd: dir, env: {} }))).toMatch(/^APPLIANCE_NO_CREDENTIALS: --url is http:\/\/elsewhere:8080 but no token/);
    expect(await resolveTarget({ url: 'http://127.0.0.1:8181' }, { cwd: dir, env: {} })).toMatchObject({ token: 'admin.local' });
  });

  it('says the core has not started yet when the token file is missing', async () => {
    await writeAllInOne(8181);
    expect(await code(resolveTarget({}, { cwd: dir, env: {} }))).toMatch(/^APPLIANCE_NO_CREDENTIALS: no admin token at .*admin-token: the core writes it on its first start/);
  });

  it('names the file and the fix when the token is not readable', async () => {
    await writeAllInOne(8181, 'admin.local');
    const expected = /APPLIANCE_TOKEN_UNREADABLE: cannot read the admin token .* \(EACCES\): run as the user/;
    if (!isRoot()) {
      await chmod(join(dir, 'var', 'core', 'admin-token'), 0o000);
      expect(await code(resolveTarget({}, { cwd: dir, env: {} }))).toMatch(expected);
      return;
    }
    // Root reads any file: run the CLI as nobody, who can read the config but not the
    // root-owned 0600 token, as an operator's own account would find it.
    await chmod(dir, 0o755);
    for (const d of ['configs', 'var', join('var', 'core')]) await chmod(join(dir, d), 0o755);
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, 'site', 'list'], { cwd: dir, uid: 65534, gid: 65534, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });
    expect(r.stderr).toMatch(expected);
    expect(r.code).toBe(1);
  });

  it('cannot know the URL of a core on port 0', async () => {
    await writeAllInOne(0, 'admin.local');
    expect(await code(resolveTarget({}, { cwd: dir, env: {} }))).toMatch(/^APPLIANCE_NO_CREDENTIALS: .*random port/);
  });

  it('uses --config FILE, and says when it runs no core', async () => {
    await writeFile(join(dir, 'agent.yaml'), 'agent:\n  coreUrl: http://core:8080\n');
    expect(await code(resolveTarget({ config: 'agent.yaml' }, { cwd: dir, env: {} }))).toMatch(/^APPLIANCE_NO_CREDENTIALS: config agent\.yaml runs no core/);
  });

  it('rejects an OUTPOST_URL that is not a URL', async () => {
    expect(await code(resolveTarget({}, { cwd: dir, env: { OUTPOST_URL: 'core:8080:x', OUTPOST_TOKEN: 't' } }))).toMatch(/^APPLIANCE_NO_CREDENTIALS: OUTPOST_URL 'core:8080:x' is not a URL/);
  });
});
