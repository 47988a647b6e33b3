// End-to-end: `outpost start` and the admin commands as real child processes, on a
// temp directory laid out like a checkout (configs/all-in-one.yaml, ./var), so the CLI
// finds the core and its admin token by itself, as `npx outpost` does after `npm start`.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir, waitFor } from '@outpost/testing';
import { freePort, runCli, startOutpost, type Running } from '../helpers.js';

let dir: string;
let port: number;
let outpost: Running | undefined;
let url: string;

const configText = (httpPort: number): string => `# test appliance
log:
  level: warn
core:
  dataDir: ./var/core
  http:
    host: 127.0.0.1
    port: ${httpPort}
  datagram:
    host: 127.0.0.1
    port: 0
agent:
  dataDir: ./var/agent
  name: local-agent
  tasks:
    tickleHost: 127.0.0.1
    ticklePort: 0
`;

const cli = (...args: string[]) => runCli(args, { cwd: dir });

beforeAll(async () => {
  dir = await tempDir('outpost-appliance-');
  port = await freePort();
  await mkdir(join(dir, 'configs'));
  await writeFile(join(dir, 'configs', 'all-in-one.yaml'), configText(port));
  outpost = startOutpost(['--config', 'configs/all-in-one.yaml'], { cwd: dir });
  url = await outpost.banner();
});

afterAll(async () => {
  await outpost?.stop('SIGKILL');
  await removeDir(dir);
});

describe('outpost start (all-in-one: core and a local agent)', () => {
  it('prints a banner with the core URL, the admin token file and how to use the CLI', async () => {
    expect(url).toBe(`http://127.0.0.1:${port}`);
    expect(outpost!.stdout).toMatch(/admin token\s+var\/core\/admin-token/);
    expect(outpost!.stdout).toContain('npx outpost site list');
    expect((await readFile(join(dir, 'var', 'core', 'admin-token'), 'utf8')).trim()).toMatch(/^admin\./);
  });

  it('enrolls the local agent with a token it mints, without any config for it', async () => {
    const agents = await waitFor(
      async () => {
        const r = await cli('agents', '--json');
        const items = (JSON.parse(r.stdout) as { items: { name: string; state: string }[] }).items;
        return items.length === 1 && items;
      },
      { timeoutMs: 10_000, what: 'the local agent to enroll' },
    );
    expect(agents[0]!.name).toBe('local-agent');
    const table = await cli('agents');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+STATE\s+LAST CONTACT/);
    expect(table.stdout).toContain('local-agent');
  });

  it('adds, lists and removes a site (finding the core through ./configs/all-in-one.yaml)', async () => {
    const add = await cli('site', 'add', 'hq', '--subnet', '10.1.0.0/16');
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toBe('added site hq: 10.1.0.0/16\n');

    const list = await cli('site', 'list', '--json');
    expect(list.code).toBe(0);
    const sites = JSON.parse(list.stdout) as { items: { name: string; subnets: string[] }[] };
    expect(sites.items).toEqual([expect.objectContaining({ name: 'hq', subnets: ['10.1.0.0/16'] })]);

    const table = await cli('site', 'list');
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+SUBNETS\s+SITE SERVERS\s+AGENTS\s+DESCRIPTION$/);
    expect(table.stdout).toMatch(/^hq\s+10\.1\.0\.0\/16\s+0\s+0\s+-$/m);

    const rm = await cli('site', 'rm', 'hq');
    expect(rm.code).toBe(0);
    expect(rm.stdout).toBe('removed site hq\n');
    expect(JSON.parse((await cli('site', 'list', '--json')).stdout)).toEqual({ items: [] });
  });

  it('prints API errors as "error CODE: message" with exit 1', async () => {
    const bad = await cli('site', 'add', 'bad', '--subnet', '10.1.0.0/33');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error COMMON_BAD_CIDR: .*10\.1\.0\.0\/33/);
    const missing = await cli('site', 'rm', 'nowhere');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error CORE_SITE_NOT_FOUND: /);
  });

  it('creates an enrollment token (--json for scripts)', async () => {
    const r = await cli('token', 'create', '--for', 'agent', '--uses', '3', '--expires', '1h', '--json');
    expect(r.code).toBe(0);
    const token = JSON.parse(r.stdout) as { token: string; for: string; uses: number };
    expect(token).toMatchObject({ for: 'agent', uses: 3 });
    expect(token.token).toMatch(/\./);
    const human = await cli('token', 'create', '--for', 'site-server', '--service', 'task', '--service', 'package:constrained', '--name', 'ts.example');
    expect(human.stdout).toMatch(/^TOKEN\s+FOR\s+USES\s+EXPIRES\n\S+\s+site-server\s+1\s+/);
    expect(human.stdout).toContain('Grants: task,package:constrained');
    expect(human.stdout).toContain('names: ts.example');
    const noGrant = await cli('token', 'create', '--for', 'site-server');
    expect(noGrant.code).toBe(2);
    expect(noGrant.stderr).toMatch(/needs at least one --service/);
  });

  it('lists site servers (none yet)', async () => {
    expect(JSON.parse((await cli('site-servers', '--json')).stdout)).toEqual({ items: [] });
    expect((await cli('site-servers')).stdout).toMatch(/^no site servers/);
  });

  it('creates a site-server token with its grant, and changes the grant of the enrolled server (site-server set)', async () => {
    const t = JSON.parse((await cli('token', 'create', '--for', 'site-server', '--service', 'task', '--service', 'netboot', '--json')).stdout) as { token: string; grant: unknown };
    expect(t.grant).toEqual({ services: { task: true, netboot: true } });
    const enrolled = await fetch(`${url}/api/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: t.token, name: 'ts-cli', services: { task: { url: 'http://127.0.0.1:9' }, netboot: {} } }),
    });
    expect(enrolled.status).toBe(201);
    const { id } = (await enrolled.json()) as { id: string };
    // Enrolled from loopback with no address in the grant: that address is approved.
    const listed = await cli('site-servers');
    expect(listed.stdout).toMatch(/GRANTED\s+SITES\s+AGENTS\s+ADDRESSES/);
    expect(listed.stdout).toMatch(/ts-cli\s+online\s+task,netboot\s+task,netboot\s+-\s+\d+\s+127\.0\.0\.1/);
    const set = await cli('site-server', 'set', id, '--no-service', 'task', '--service', 'package:unconstrained', '--address', '10.9.0.1', '--name', 'ts.example', '--json');
    expect(set.code, set.stderr).toBe(0);
    const after = JSON.parse(set.stdout) as { services: Record<string, unknown>; grant: { services: unknown; addresses: string[]; names: string[]; approvedBy: string } };
    expect(after.grant).toMatchObject({ services: { netboot: true, package: { constrained: false } }, addresses: ['10.9.0.1'], names: ['ts.example'], approvedBy: 'admin' });
    // The task service it ran is gone with the grant.
    expect(after.services).toEqual({ netboot: {} });
    const human = await cli('site-server', 'set', id, '--site', 'nowhere');
    expect(human.code).toBe(1);
    expect(human.stderr).toMatch(/^error CORE_SITE_NOT_FOUND: /);
    const bad = await cli('site-server', 'set', id, '--service', 'printer');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('Usage: outpost site-server set');
  });

  it('reaches a core elsewhere through OUTPOST_URL and OUTPOST_TOKEN', async () => {
    const elsewhere = await tempDir('outpost-cwd-');
    try {
      const token = (await readFile(join(dir, 'var', 'core', 'admin-token'), 'utf8')).trim();
      const ok = await runCli(['site', 'list', '--json'], { cwd: elsewhere, env: { OUTPOST_URL: url, OUTPOST_TOKEN: token } });
      expect(ok.code).toBe(0);
      const wrong = await runCli(['site', 'list'], { cwd: elsewhere, env: { OUTPOST_URL: url, OUTPOST_TOKEN: 'admin.wrong' } });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/^error COMMON_UNAUTHORIZED: /);
      const none = await runCli(['site', 'list'], { cwd: elsewhere });
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/^error APPLIANCE_NO_CREDENTIALS: no core to talk to/);
    } finally {
      await removeDir(elsewhere);
    }
  });

  it('exits 2 with the usage for an unknown command', async () => {
    const r = await cli('launch');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error APPLIANCE_USAGE: unknown command 'launch'/);
    expect(r.stderr).toContain('Usage: outpost <command>');
  });

  it('refuses a second appliance on the same data dir with COMMON_DB_LOCKED naming it', async () => {
    await writeFile(join(dir, 'second.yaml'), configText(0));
    const second = await runCli(['start', '--config', 'second.yaml'], { cwd: dir });
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/^error COMMON_DB_LOCKED: core failed to start: the database in \.\/var\/core is already in use/m);
    expect(second.stdout).not.toContain('Outpost is running');
  });

  it('stops on SIGTERM with exit 0 within seconds, and starts again on the same data dirs', async () => {
    const first = await outpost!.stop('SIGTERM');
    expect(first).toMatchObject({ code: 0, signal: null });
    expect(first.ms).toBeLessThan(5_000);
    expect(outpost!.stderr).toMatch(/SIGTERM: stopping agent, core/);

    outpost = startOutpost(['--config', 'configs/all-in-one.yaml'], { cwd: dir });
    expect(await outpost.banner()).toBe(url);
    // Same admin token, same agent (no second enrollment), data still there.
    const agents = JSON.parse((await cli('agents', '--json')).stdout) as { items: { name: string }[] };
    expect(agents.items.map((a) => a.name)).toEqual(['local-agent']);
    expect(outpost.stdout + outpost.stderr).not.toMatch(/LEVEL_LOCKED|DB_LOCKED/);

    const again = await outpost.stop('SIGINT');
    expect(again).toMatchObject({ code: 0, signal: null });
  });
});

describe('outpost start with a bad config', () => {
  let badDir: string;
  beforeAll(async () => {
    badDir = await tempDir('outpost-badconfig-');
  });
  afterAll(async () => removeDir(badDir));

  it('exits 1 naming the file and the unknown key, before starting anything', async () => {
    await writeFile(join(badDir, 'bad.yaml'), 'core:\n  dataDir: ./var/core\n  htp:\n    port: 0\ncores: {}\n');
    const r = await runCli(['start', '--config', 'bad.yaml'], { cwd: badDir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error COMMON_CONFIG_INVALID: invalid config \(.*bad\.yaml\)/);
    expect(r.stderr).toContain("(top level): unknown key(s) 'cores'");
    expect(r.stderr).toContain("core: unknown key(s) 'htp'");
    expect(r.stdout).toBe('');
  });

  it('exits 1 for a missing config file, naming it', async () => {
    const r = await runCli(['start', '--config', 'nope.yaml'], { cwd: badDir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error COMMON_CONFIG_FILE_UNREADABLE: cannot read config file .*nope\.yaml/);
  });
});
