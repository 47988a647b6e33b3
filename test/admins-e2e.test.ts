// Issue #15 "Done when", end to end with the real `outpost` command: `outpost start` runs
// a core from the core section of configs/all-in-one.yaml (data under a temp dir, on a
// free port), and the CLI is run as a child process from that directory, as a newcomer
// runs `npx outpost` next to the config: the owner's commands find the core and its
// admin token by themselves; alice's use OUTPOST_URL and OUTPOST_TOKEN.
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readConfigFile } from '@outpost/common';
import { freePort, removeDir, tempDir } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cleanEnv, runCli, startOutpost, type CliResult, type Running } from '../appliance/test/helpers.js';

const ALL_IN_ONE = fileURLToPath(new URL('../configs/all-in-one.yaml', import.meta.url));

let dir: string;
let outpost: Running;
let url: string;

beforeAll(async () => {
  dir = await tempDir('outpost-admins-e2e-');
  const raw = (await readConfigFile(ALL_IN_ONE)) as { core: { http: Record<string, unknown>; datagram: Record<string, unknown> } };
  const config = {
    log: { level: 'warn' },
    core: { ...raw.core, http: { ...raw.core.http, port: await freePort() }, datagram: { ...raw.core.datagram, port: 0 } },
  };
  await mkdir(join(dir, 'configs'));
  // JSON is YAML: the CLI looks for ./configs/all-in-one.yaml, as in a clone.
  await writeFile(join(dir, 'configs', 'all-in-one.yaml'), JSON.stringify(config, null, 2));
  outpost = startOutpost([], { cwd: dir });
  url = await outpost.banner(30_000);
}, 60_000);

afterAll(async () => {
  await outpost?.stop();
  await removeDir(dir);
});

/** `outpost ARGS` as the owner: no credentials given, found through ./configs/all-in-one.yaml. */
const owner = (...args: string[]): Promise<CliResult> => runCli(args, { cwd: dir });
/** `outpost ARGS` with OUTPOST_URL and OUTPOST_TOKEN. */
const as = (token: string, ...args: string[]): Promise<CliResult> => runCli(args, { cwd: dir, env: { OUTPOST_URL: url, OUTPOST_TOKEN: token } });

/** `outpost ARGS` with `input` piped to its standard input. */
function withStdin(args: string[], input: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    // Written but not closed: the command reads its line and goes on.
    child.stdin.write(input);
  });
}

describe('administrators with the outpost command (issue #15, done when)', () => {
  let aliceToken = '';

  it('outpost admin add alice --role viewer prints a token; with it site add is refused (CORE_FORBIDDEN, sites.write) and site list works', async () => {
    expect((await owner('site', 'add', 'hq', '--subnet', '10.1.0.0/16')).code).toBe(0);
    const added = await owner('admin', 'add', 'alice', '--role', 'viewer');
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toContain('The token is shown only this once.');
    aliceToken = /^(at_\S+\.\S+)\s/m.exec(added.stdout)?.[1] ?? '';
    expect(aliceToken).toMatch(/^at_[^.]+\.[A-Za-z0-9_-]{20,}$/);

    const refused = await as(aliceToken, 'site', 'add', 'x', '--subnet', '10.9.0.0/16');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error CORE_FORBIDDEN: /);
    expect(refused.stderr).toContain('sites.write');

    const list = await as(aliceToken, 'site', 'list');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^hq\s+10\.1\.0\.0\/16/m);
    expect(list.stdout).not.toMatch(/^x\s/m);
  });

  it('sets a password through a pipe, and the console sign-in takes it', async () => {
    // That --password-stdin lets go of the pipe after its line is tested without a clock
    // in appliance/test/client/stdin.test.ts.
    const r = await withStdin(['admin', 'add', 'bob', '--role', 'operator', '--site', 'hq', '--password-stdin'], 'Granite-Lantern-42\n');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('added administrator bob: roles operator; sites hq; password set');
    expect(r.code).toBe(0);
    const res = await fetch(`${url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bob', password: 'Granite-Lantern-42' }) });
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toMatch(/^outpost_session=/);
    const list = await owner('admin', 'list', '--json');
    expect(JSON.parse(list.stdout)).toMatchObject({ items: [{ name: 'alice', roles: ['viewer'], password: false }, { name: 'bob', roles: ['operator'], sites: ['hq'], password: true }] });
  });

  // Needs the audit branch (outpost audit, core module audit) merged.
  it('outpost audit --json shows alice’s refused attempt and the owner’s admin add; outpost audit verify passes', async () => {
    expect(aliceToken).not.toBe('');
    const audit = await owner('audit', '--json');
    expect(audit.stderr).toBe('');
    expect(audit.code).toBe(0);
    const parsed = JSON.parse(audit.stdout) as { items?: AuditEntry[] } | AuditEntry[];
    const items = Array.isArray(parsed) ? parsed : (parsed.items ?? []);
    expect(items.find((e) => e.actor?.admin === 'alice' && e.outcome?.status === 403 && e.action === 'sites.create')).toMatchObject({ outcome: { result: 'refused' } });
    expect(items.find((e) => e.actor?.admin === 'admin' && e.action === 'admins.create' && e.object === 'admin:alice')).toMatchObject({ outcome: { result: 'ok' } });
    // Neither alice's token nor bob's password is in the log.
    expect(JSON.stringify(items)).not.toContain(aliceToken.split('.')[1]);
    expect(JSON.stringify(items)).not.toContain('Granite-Lantern-42');

    const verify = await owner('audit', 'verify');
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/audit log verified: \d+ entries/);
  });
});

interface AuditEntry {
  action?: string;
  object?: string;
  actor?: { admin?: string };
  outcome?: { status?: number; result?: string };
}
