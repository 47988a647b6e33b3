// outpost agent install-command / agent push against a real core (their usage errors,
// the token they make, a site that does not exist); the install itself is proven in
// test/install-link-e2e.test.ts and test/agent-push-e2e.test.ts.
import { join } from 'node:path';
import { main } from '@outpost/appliance';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { removeDir, tempDir } from '@outpost/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { recordingIo } from '../io.js';

let dir: string;
let core: Core;
const run = async (...argv: string[]) => {
  const io = recordingIo(dir, { OUTPOST_URL: core.url, OUTPOST_TOKEN: core.adminToken });
  const code = await main(argv, io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
};
const tokens = async () => ((await (await fetch(`${core.url}/api/v1/tokens`, { headers: { authorization: `Bearer ${core.adminToken}` } })).json()) as { items: Array<{ id: string; uses: number; note?: string; expiresAt: string }> }).items;

beforeAll(async () => {
  dir = await tempDir('outpost-agent-install-cli-');
  core = createCore(
    validateConfig(coreConfigSchema, { dataDir: join(dir, 'core'), http: { port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, install: { dir: join(dir, 'empty') } }, { file: 'test' }),
    { logger: silentLogger() },
  );
  await core.start();
});
afterAll(async () => {
  await core.stop();
  await removeDir(dir);
});

it('install-command makes a token with the uses and expiry asked for and prints the curl line for it', async () => {
  const r = await run('agent', 'install-command', '--uses', '25', '--expires', '2h', '--json');
  expect(r.code, r.err).toBe(0);
  const printed = JSON.parse(r.out) as { command: string; url: string; tokenId: string; uses: number };
  expect(printed.uses).toBe(25);
  expect(printed.command).toBe(`curl -fsS '${printed.url}' | sudo sh`);
  expect(printed.url.startsWith(`${core.url}/install/agent.sh?token=${printed.tokenId}.`)).toBe(true);
  const t = (await tokens()).find((x) => x.id === printed.tokenId)!;
  expect(t).toMatchObject({ uses: 25, note: 'outpost agent install-command' });
  expect(Date.parse(t.expiresAt) - Date.now()).toBeGreaterThan(2 * 3600_000 - 60_000);
  expect(Date.parse(t.expiresAt) - Date.now()).toBeLessThanOrEqual(2 * 3600_000);
});

it('install-command --site refuses a site that does not exist, before any token is made', async () => {
  const before = (await tokens()).length;
  const r = await run('agent', 'install-command', '--site', 'nowhere');
  expect(r.code).toBe(1);
  expect(r.err).toContain('CORE_SITE_NOT_FOUND');
  expect((await tokens()).length).toBe(before);
  expect((await run('site', 'add', 'hq', '--subnet', '10.1.0.0/16')).code).toBe(0);
  const ok = await run('agent', 'install-command', '--site', 'hq');
  expect(ok.code, ok.err).toBe(0);
  expect((await tokens()).at(-1)).toMatchObject({ note: 'outpost agent install-command --site hq', site: 'hq' });
  // Staging to the site is refused (this core has no agent to install): a warning, the line is still printed.
  expect(ok.err).toMatch(/^warning: the install files are not staged to site hq \(CORE_INSTALL_NO_AGENT: /m);
});

it('push: a core with nothing to install says so (CORE_INSTALL_NO_AGENT) before any host is tried; bad command lines exit 2', async () => {
  const before = (await tokens()).length;
  const r = await run('agent', 'push', 'pc1', '--ssh-user', 'root');
  expect(r.code).toBe(1);
  expect(r.err).toContain('CORE_INSTALL_NO_AGENT');
  expect((await tokens()).length).toBe(before);
  expect((await run('agent', 'push', '--ssh-user', 'root')).code).toBe(2);
  expect((await run('agent', 'push', 'pc1')).code).toBe(2);
  expect((await run('agent', 'push', '-oProxyCommand=x', '--ssh-user', 'root')).code).toBe(2);
  expect((await run('agent', 'install-command', '--uses', '0')).code).toBe(2);
});
