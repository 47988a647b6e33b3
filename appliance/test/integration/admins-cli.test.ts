import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { main, type CliIo } from '@outpost/appliance';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { removeDir, tempDir } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let core: Core;
let dir: string;
beforeAll(async () => {
  dir = await tempDir('outpost-cli-admins-');
  core = createCore(validateConfig(coreConfigSchema, { dataDir: dir, http: { port: 0 }, datagram: { host: '127.0.0.1', port: 0 } }, { file: 'test' }), { logger: silentLogger() });
  await core.start();
  for (const [name, subnet] of [['hq', '10.1.0.0/16'], ['lab', '10.2.0.0/16']] as const) expect((await cli(['site', 'add', name, '--subnet', subnet])).code).toBe(0);
});
afterAll(async () => {
  await core.stop();
  await removeDir(dir);
});

/** `outpost ARGV` in-process against the core, as the owner unless `token` is given. */
async function cli(argv: string[], options: { token?: string; stdin?: string } = {}): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    out: (l) => void out.push(l),
    err: (l) => void err.push(l),
    env: { OUTPOST_URL: core.url, OUTPOST_TOKEN: options.token ?? core.adminToken },
    cwd: dir,
    signals: new EventEmitter(),
    ...(options.stdin === undefined ? {} : { stdin: Readable.from([options.stdin]) }),
  };
  const code = await main(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const tokenIn = (text: string): string => {
  const m = /^(at_\S+\.\S+)\s/m.exec(text);
  if (!m) throw new Error(`no token in:\n${text}`);
  return m[1]!;
};

async function signIn(name: string, password: string): Promise<number> {
  const res = await fetch(`${core.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, password }) });
  await res.body?.cancel();
  return res.status;
}

describe('outpost admin and role commands against a real core', () => {
  it('adds a viewer with a one-time token that may read but not change, and the refusal names the permission', async () => {
    const added = await cli(['admin', 'add', 'alice', '--role', 'viewer']);
    expect(added.code).toBe(0);
    expect(added.out).toContain('added administrator alice: roles viewer; every site');
    expect(added.out).toContain('The token is shown only this once.');
    const token = tokenIn(added.out);

    const refused = await cli(['site', 'add', 'x', '--subnet', '10.9.0.0/16'], { token });
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^error CORE_FORBIDDEN: .*sites\.write/);
    expect((await cli(['site', 'list', '--json'], { token })).out).toContain('"hq"');
    expect((await cli(['site', 'list'], { token })).code).toBe(0);
    const noAdmins = await cli(['admin', 'list'], { token });
    expect(noAdmins).toMatchObject({ code: 1, err: expect.stringMatching(/CORE_FORBIDDEN: .*admins\.read/) });
    // Nothing the refused call tried was applied.
    expect((await cli(['site', 'list'])).out).not.toMatch(/^x\s/m);

    const shown = JSON.parse((await cli(['admin', 'show', 'alice', '--json'])).out) as { roles: string[]; tokens: { name: string }[]; password: boolean };
    expect(shown).toMatchObject({ roles: ['viewer'], password: false, tokens: [{ name: 'default' }] });
    // Its own account needs no permission.
    expect((await cli(['admin', 'show', 'alice'], { token })).out).toMatch(/^administrator alice\n {2}roles: {4}viewer\n {2}scope: {4}every site\n {2}sign-in: {2}token only/);
  });

  it('sets a password from standard input (first line, line end stripped) that signs in to the console', async () => {
    const added = await cli(['admin', 'add', 'bob', '--role', 'operator', '--site', 'hq', '--password-stdin'], { stdin: 'Granite-Lantern-42\r\nignored\n' });
    expect(added).toMatchObject({ code: 0, out: 'added administrator bob: roles operator; sites hq; password set' });
    expect(added.out).not.toContain('at_');
    expect(await signIn('bob', 'Granite-Lantern-42')).toBe(200);

    const weak = await cli(['admin', 'password', 'bob', '--password-stdin'], { stdin: 'password\n' });
    expect(weak).toMatchObject({ code: 1, err: expect.stringMatching(/^error CORE_PASSWORD_WEAK: /) });
    expect(await cli(['admin', 'password', 'bob', '--password-stdin'], { stdin: 'Copper-Meadow-Ridge-7\n' })).toMatchObject({ code: 0, out: 'password of bob set; its console sessions ended' });
    expect(await signIn('bob', 'Granite-Lantern-42')).toBe(401);
    expect(await signIn('bob', 'Copper-Meadow-Ridge-7')).toBe(200);

    // bob changes his own password with his own token: the current one first.
    const mine = tokenIn((await cli(['admin', 'token', 'create', 'bob', '--name', 'laptop'])).out);
    const wrong = await cli(['admin', 'password', 'bob', '--password-stdin', '--current-stdin'], { token: mine, stdin: 'not-the-current-1\nSilver-Harbor-Quay-9\n' });
    expect(wrong).toMatchObject({ code: 1, err: expect.stringMatching(/^error CORE_SIGN_IN_FAILED: /) });
    expect(wrong.err).not.toContain('missing permission');
    const right = await cli(['admin', 'password', 'bob', '--password-stdin', '--current-stdin'], { token: mine, stdin: 'Copper-Meadow-Ridge-7\nSilver-Harbor-Quay-9\n' });
    expect(right.code).toBe(0);
    expect(await signIn('bob', 'Silver-Harbor-Quay-9')).toBe(200);
  });

  it('lists, changes the roles and scope of, and removes administrators', async () => {
    expect((await cli(['admin', 'add', 'carol', '--role', 'viewer', '--site', 'hq', 'lab'])).out).toMatch(/^added administrator carol: roles viewer; sites hq, lab/);
    const list = await cli(['admin', 'list']);
    expect(list.out.split('\n')[0]).toMatch(/^NAME\s+ROLES\s+SITES\s+SIGN-IN\s+TOKENS\s+LOCKED UNTIL$/);
    expect(list.out).toMatch(/^carol\s+viewer\s+hq,lab\s+token only\s+1\s+-$/m);
    expect(JSON.parse((await cli(['admin', 'list', '--json'])).out)).toMatchObject({ items: expect.arrayContaining([expect.objectContaining({ name: 'carol', sites: ['hq', 'lab'] })]) });

    expect((await cli(['admin', 'set', 'carol', '--role', 'operator,viewer', '--site', 'lab'])).out).toBe('changed administrator carol: roles operator, viewer; sites lab');
    expect((await cli(['admin', 'set', 'carol', '--all-sites'])).out).toBe('changed administrator carol: roles operator, viewer; every site');
    expect(JSON.parse((await cli(['admin', 'set', 'carol', '--role', 'viewer', '--json'])).out)).toMatchObject({ name: 'carol', roles: ['viewer'] });
    expect(await cli(['admin', 'set', 'carol', '--role', 'wizard'])).toMatchObject({ code: 1, err: expect.stringContaining('CORE_ROLE_NOT_FOUND') });
    expect(await cli(['admin', 'set', 'carol', '--site', 'mars'])).toMatchObject({ code: 1, err: expect.stringContaining('CORE_SITE_NOT_FOUND') });
    expect(await cli(['admin', 'add', 'carol', '--role', 'viewer'])).toMatchObject({ code: 1, err: expect.stringContaining('CORE_ADMIN_EXISTS') });
    expect(await cli(['admin', 'set', 'admin', '--role', 'viewer'])).toMatchObject({ code: 1, err: expect.stringContaining('CORE_ADMIN_PROTECTED') });

    expect(await cli(['admin', 'rm', 'carol'])).toMatchObject({ code: 0, out: 'removed administrator carol (its API tokens and console sessions with it)' });
    expect(await cli(['admin', 'show', 'carol'])).toMatchObject({ code: 1, err: expect.stringMatching(/^error CORE_ADMIN_NOT_FOUND: /) });
    expect(await cli(['admin', 'rm', 'nobody', '--json'])).toMatchObject({ code: 1, out: '', err: expect.stringMatching(/^error CORE_ADMIN_NOT_FOUND: /) });
  });

  it('creates, lists and revokes API tokens; a revoked one no longer works', async () => {
    expect((await cli(['admin', 'add', 'dave', '--role', 'viewer', '--expires', '1d'])).code).toBe(0);
    const first = (JSON.parse((await cli(['admin', 'show', 'dave', '--json'])).out) as { tokens: { expiresAt: string }[] }).tokens[0]!;
    expect(Date.parse(first.expiresAt) - Date.now()).toBeGreaterThan(23 * 3600_000);
    expect(Date.parse(first.expiresAt) - Date.now()).toBeLessThanOrEqual(24 * 3600_000);
    const created = await cli(['admin', 'token', 'create', 'dave', '--name', 'ci', '--expires', '2h', '--json']);
    const issued = JSON.parse(created.out) as { id: string; name: string; token: string; expiresAt: string };
    expect(issued).toMatchObject({ name: 'ci', token: expect.stringMatching(new RegExp(`^${issued.id}\\.`)) });
    expect(Date.parse(issued.expiresAt) - Date.now()).toBeLessThanOrEqual(2 * 3600_000);
    expect((await cli(['site', 'list'], { token: issued.token })).code).toBe(0);

    const listed = await cli(['admin', 'token', 'list', 'dave']);
    expect(listed.out).toMatch(/^TOKEN ID\s+NAME\s+CREATED\s+EXPIRES$/m);
    expect(listed.out).toMatch(new RegExp(`^${issued.id}\\s+ci\\s`, 'm'));
    expect(listed.out).not.toContain(issued.token);
    expect(JSON.parse((await cli(['admin', 'token', 'list', 'dave', '--json'])).out)).toMatchObject({ items: [{ name: 'default' }, { name: 'ci', id: issued.id }] });

    expect(await cli(['admin', 'token', 'rm', 'dave', issued.id])).toMatchObject({ code: 0, out: `revoked API token ${issued.id} of dave` });
    expect((await cli(['site', 'list'], { token: issued.token })).code).toBe(1);
    expect(await cli(['admin', 'token', 'rm', 'dave', issued.id])).toMatchObject({ code: 1, err: expect.stringContaining('CORE_ADMIN_TOKEN_NOT_FOUND') });
  });

  it('adds, lists and removes custom roles and lists the permissions', async () => {
    const perms = await cli(['role', 'permissions']);
    expect(perms.out.split('\n')[0]).toMatch(/^PERMISSION\s+ALLOWS$/);
    expect(perms.out).toMatch(/^sites\.write\s+add, change and remove sites$/m);
    expect(JSON.parse((await cli(['role', 'permissions', '--json'])).out)).toMatchObject({ items: expect.arrayContaining([{ permission: 'audit.read', description: expect.any(String) }]) });

    expect((await cli(['role', 'add', 'helpdesk', '--allow', 'sites.read', 'agents.read', '--allow', 'runs.read', '--description', 'looks at things'])).out).toBe('added role helpdesk: agents.read, runs.read, sites.read');
    expect(await cli(['role', 'add', 'bad', '--allow', 'sites.fly'])).toMatchObject({ code: 1, err: expect.stringContaining('CORE_UNKNOWN_PERMISSION') });
    expect(await cli(['role', 'add', 'viewer', '--allow', 'sites.read'])).toMatchObject({ code: 1, err: expect.stringContaining('CORE_ROLE_BUILT_IN') });
    const list = await cli(['role', 'list']);
    expect(list.out).toMatch(/^viewer\s+built-in\s+read only\s+\S*sites\.read/m);
    expect(list.out).toMatch(/^helpdesk\s+custom\s+looks at things\s+agents\.read,runs\.read,sites\.read$/m);
    expect(JSON.parse((await cli(['role', 'list', '--json'])).out)).toMatchObject({ items: expect.arrayContaining([{ name: 'helpdesk', builtIn: false, description: 'looks at things', permissions: ['agents.read', 'runs.read', 'sites.read'] }]) });

    await cli(['admin', 'add', 'erin', '--role', 'helpdesk']);
    expect(await cli(['role', 'rm', 'helpdesk'])).toMatchObject({ code: 1, err: expect.stringMatching(/^error CORE_ROLE_IN_USE: .*erin/) });
    await cli(['admin', 'rm', 'erin']);
    expect(await cli(['role', 'rm', 'helpdesk', '--json'])).toMatchObject({ code: 0, out: expect.stringContaining('"deleted": true') });
    expect((await cli(['role', 'list'])).out).not.toContain('helpdesk');
  });

  it('prints the missing permission when the refusal message does not name it (a scoped granter widening a scope)', async () => {
    expect((await cli(['role', 'add', 'branch-admin', '--allow', 'admins.read', 'admins.write', 'sites.read'])).code).toBe(0);
    const frank = tokenIn((await cli(['admin', 'add', 'frank', '--role', 'branch-admin', '--site', 'hq'])).out);
    const wider = await cli(['admin', 'add', 'gina', '--role', 'branch-admin'], { token: frank });
    expect(wider.code).toBe(1);
    expect(wider.err).toMatch(/^error CORE_FORBIDDEN: administrator frank is scoped to hq and cannot grant every site\nmissing permission: admins\.write$/);
    expect((await cli(['admin', 'add', 'gina', '--role', 'branch-admin', '--site', 'hq'], { token: frank })).code).toBe(0);
    const beyond = await cli(['admin', 'add', 'hank', '--role', 'operator', '--site', 'hq'], { token: frank });
    expect(beyond).toMatchObject({ code: 1, err: expect.stringMatching(/^error CORE_FORBIDDEN: administrator frank cannot grant permissions it lacks: /) });
  });
});
