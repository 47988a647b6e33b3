import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { main } from '@outpost/appliance';
import { freePort } from '../helpers.js';
import { recordingIo } from '../io.js';

/** A port nothing listens on: a command that got past its argument checks fails to connect. */
const closedPort = await freePort();

async function run(argv: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const io = recordingIo(tmpdir(), { OUTPOST_URL: `http://127.0.0.1:${closedPort}`, OUTPOST_TOKEN: 'admin.x' });
  if (stdin !== undefined) io.stdin = Readable.from([stdin]);
  const code = await main(argv, io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

describe('outpost admin: command line', () => {
  it.each([
    [['admin'], /missing sub-command: add, list, show, set, rm, password or token/, 'Usage: outpost admin <add|'],
    [['admin', 'promote', 'x'], /unknown sub-command 'admin promote'/, 'Usage: outpost admin <add|'],
    [['admin', 'add', '--role', 'viewer'], /missing administrator NAME/, 'Usage: outpost admin add'],
    [['admin', 'add', 'alice'], /give at least one --role/, 'Usage: outpost admin add'],
    [['admin', 'add', 'alice', 'bob', '--role', 'viewer'], /unexpected argument 'bob'/, 'Usage: outpost admin add'],
    [['admin', 'add', 'alice', '--role', 'viewer', '--expires', 'soon'], /--expires: bad duration/, 'Usage: outpost admin add'],
    [['admin', 'add', 'alice', '--role', 'viewer', '--password-stdin', '--expires', '7d'], /--expires is for the API token made without --password-stdin/, 'Usage: outpost admin add'],
    [['admin', 'add', 'alice', '--role', 'viewer', '--password', 'hunter2'], /Unknown option '--password'/, 'Usage: outpost admin add'],
    [['admin', 'show'], /missing administrator NAME/, 'Usage: outpost admin show'],
    [['admin', 'rm', 'a', 'b'], /unexpected argument 'b'/, 'Usage: outpost admin rm'],
    [['admin', 'set', 'alice'], /nothing to change: give --role, --site or --all-sites/, 'Usage: outpost admin set'],
    [['admin', 'set', 'alice', '--site', 'hq', '--all-sites'], /--site and --all-sites contradict/, 'Usage: outpost admin set'],
    [['admin', 'set', 'alice', '--role', ','], /--role needs a role name/, 'Usage: outpost admin set'],
    [['admin', 'password', 'alice'], /give --password-stdin/, 'Usage: outpost admin password'],
    [['admin', 'token'], /missing sub-command: create, list or rm/, 'Usage: outpost admin token <create|list|rm>'],
    [['admin', 'token', 'create', 'alice'], /give the token a --name/, 'Usage: outpost admin token create'],
    [['admin', 'token', 'create', 'alice', '--name', 'ci', '--expires', '3 fortnights'], /--expires: bad duration/, 'Usage: outpost admin token create'],
    [['admin', 'token', 'rm', 'alice'], /missing token ID/, 'Usage: outpost admin token rm'],
    [['role'], /missing sub-command: add, list, rm or permissions/, 'Usage: outpost role <add|'],
    [['role', 'add', 'helpdesk'], /give at least one --allow PERMISSION/, 'Usage: outpost role add'],
    [['role', 'add', '--allow', 'sites.read'], /missing role NAME/, 'Usage: outpost role add'],
    [['role', 'rm'], /missing role NAME/, 'Usage: outpost role rm'],
    [['role', 'list', 'extra'], /Unexpected argument 'extra'/, 'Usage: outpost role list'],
  ])('%j is a usage error (exit 2) with the command usage', async (argv, message, usageLine) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error APPLIANCE_USAGE: /);
    expect(r.err).toMatch(message);
    expect(r.err).toContain(usageLine);
  });

  it('refuses --password-stdin when standard input is empty or a terminal, before calling the core', async () => {
    const empty = await run(['admin', 'add', 'alice', '--role', 'viewer', '--password-stdin'], '');
    expect(empty.code).toBe(2);
    expect(empty.err).toMatch(/^error APPLIANCE_USAGE: no password on standard input/);
    const tty = recordingIo(tmpdir(), { OUTPOST_URL: `http://127.0.0.1:${closedPort}`, OUTPOST_TOKEN: 'admin.x' });
    tty.stdin = Object.assign(Readable.from(['secret\n']), { isTTY: true });
    expect(await main(['admin', 'password', 'alice', '--password-stdin'], tty)).toBe(2);
    expect(tty.stderr.join('\n')).toMatch(/from a pipe, not a terminal/);
    const oneLine = await run(['admin', 'password', 'alice', '--password-stdin', '--current-stdin'], 'only-the-current-one\n');
    expect(oneLine.code).toBe(2);
    expect(oneLine.err).toMatch(/no new password on standard input \(expected current password, then new password, one a line\)/);
  });

  it('gets past its checks with good arguments (and then finds no core: exit 1)', async () => {
    for (const argv of [
      ['admin', 'add', 'alice', '--role', 'viewer', 'operator', '--site', 'hq,lab'],
      ['admin', 'list'],
      ['admin', 'set', 'alice', '--all-sites'],
      ['admin', 'token', 'create', 'alice', '--name', 'laptop', '--expires', '30d'],
      ['admin', 'token', 'rm', 'alice', 'at_1'],
      ['role', 'add', 'helpdesk', '--allow', 'sites.read', 'agents.read', '--description', 'looks'],
      ['role', 'permissions'],
    ]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.err, argv.join(' ')).toMatch(/^error APPLIANCE_CORE_UNREACHABLE: /);
    }
    const withPassword = await run(['admin', 'password', 'alice', '--password-stdin'], 'correct horse battery\n');
    expect(withPassword.err).toMatch(/^error APPLIANCE_CORE_UNREACHABLE: /);
  });

  it('prints help for every admin and role sub-command with exit 0', async () => {
    const commands = [
      ['admin', '--help'],
      ['admin', 'add', '--help'],
      ['admin', 'list', '-h'],
      ['admin', 'show', '--help'],
      ['admin', 'set', '--help'],
      ['admin', 'rm', '--help'],
      ['admin', 'password', '--help'],
      ['admin', 'token', '--help'],
      ['admin', 'token', 'create', '--help'],
      ['admin', 'token', 'list', '--help'],
      ['admin', 'token', 'rm', '--help'],
      ['role', '--help'],
      ['role', 'add', '--help'],
      ['role', 'list', '--help'],
      ['role', 'rm', '--help'],
      ['role', 'permissions', '--help'],
      ['help', 'admin', 'token', 'create'],
    ];
    for (const argv of commands) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(0);
      const name = argv[0] === 'help' ? argv.slice(1).join(' ') : argv.filter((a) => !a.startsWith('-')).join(' ');
      expect(r.out, argv.join(' ')).toMatch(new RegExp(`^Usage: outpost ${name}\\b`));
    }
    const top = await run(['--help']);
    expect(top.out).toContain('admin add NAME --role ROLE... [--site SITE...] [--password-stdin]');
    expect(top.out).toContain('role add NAME --allow PERMISSION...');
  });
});
