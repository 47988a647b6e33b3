import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { main } from '@outpost/appliance';
import { freePort } from './helpers.js';
import { recordingIo } from './io.js';

/** A port nothing listens on (free a moment ago). */
const closedPort = await freePort();

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = recordingIo(tmpdir(), { OUTPOST_URL: `http://127.0.0.1:${closedPort}`, OUTPOST_TOKEN: 'admin.x' });
  const code = await main(argv, io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

describe('outpost command line', () => {
  it('prints the overall usage for --help (exit 0) and with no command (exit 2)', async () => {
    const help = await run('--help');
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: outpost <command>/);
    expect(help.out).toContain('site add NAME --subnet CIDR...');
    const none = await run();
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/^Usage: outpost <command>/);
  });

  it('prints its version and the Node.js it runs on for --version (exit 0)', async () => {
    const r = await run('--version');
    expect(r.code).toBe(0);
    expect(r.out).toBe(`outpost 0.1.0 (node ${process.version})`);
  });

  it('rejects an unknown command with exit 2, the code and the usage', async () => {
    const r = await run('frobnicate');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error APPLIANCE_USAGE: unknown command 'frobnicate'/);
    expect(r.err).toContain('Usage: outpost <command>');
  });

  it.each([
    [['site', 'add', 'hq'], /give at least one --subnet/, 'Usage: outpost site add'],
    [['site', 'add', '--subnet', '10.0.0.0/8'], /missing site NAME/, 'Usage: outpost site add'],
    [['site', 'rm'], /missing site NAME/, 'Usage: outpost site rm'],
    [['site', 'move', 'x'], /unknown sub-command 'site move'/, 'Usage: outpost site <add|list|rm>'],
    [['site', 'list', '--colour'], /Unknown option '--colour'/, 'Usage: outpost site list'],
    [['token', 'create'], /missing --for/, 'Usage: outpost token create'],
    [['token', 'create', '--for', 'printer'], /--for must be agent or site-server/, 'Usage: outpost token create'],
    [['token', 'create', '--for', 'agent', '--uses', '0'], /--uses must be a positive whole number/, 'Usage: outpost token create'],
    [['token', 'create', '--for', 'agent', '--expires', 'soon'], /--expires: bad duration/, 'Usage: outpost token create'],
    [['token', 'create', '--for', 'site-server'], /needs at least one --service/, 'Usage: outpost token create'],
    [['token', 'create', '--for', 'site-server', '--service', 'printer'], /--service must be one of task, package:constrained/, 'Usage: outpost token create'],
    [['token', 'create', '--for', 'site-server', '--service', 'task', '--address', 'ts.example'], /--address must be an IP address/, 'Usage: outpost token create'],
    [['token', 'create', '--for', 'agent', '--service', 'task'], /an agent is granted nothing/, 'Usage: outpost token create'],
    [['site-server', 'set'], /missing the site server ID/, 'Usage: outpost site-server set'],
    [['site-server', 'set', 'ss_1'], /nothing to change/, 'Usage: outpost site-server set'],
    [['site-server', 'set', 'ss_1', '--no-service', 'printer'], /--no-service must be one of/, 'Usage: outpost site-server set'],
    [['agents', '--state', 'asleep'], /--state must be one of online, poll-only, offline/, 'Usage: outpost agents'],
    [['start', '--config'], /argument missing/, 'Usage: outpost start'],
  ])('%j is a usage error (exit 2) with the command usage', async (argv, message, usageLine) => {
    const r = await run(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error APPLIANCE_USAGE: /);
    expect(r.err).toMatch(message);
    expect(r.err).toContain(usageLine);
  });

  it('prints per-command help with exit 0', async () => {
    for (const argv of [['site', 'add', '--help'], ['token', 'create', '-h'], ['agents', '--help'], ['site-servers', '--help'], ['site-server', 'set', '--help'], ['start', '--help'], ['help', 'site', 'rm']]) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.out, argv.join(' ')).toMatch(/^Usage: outpost /);
    }
  });

  it('reports an unreachable core as APPLIANCE_CORE_UNREACHABLE with exit 1', async () => {
    const r = await run('site', 'list');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error APPLIANCE_CORE_UNREACHABLE: cannot reach the core at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\); is it running\?/);
  });
});
