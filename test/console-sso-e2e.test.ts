// Single sign-on in a real browser: headless Chromium (Debian `chromium`, through
// playwright-core) opens the console of a real core, clicks the SSO button, logs in on a
// real OpenID Connect provider (oidc-provider, @outpost/testing/oidc) and lands in the
// console with the role and scope the core's config maps the user's groups to.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { e2eGate, freePort, removeDir, tempDir } from '@outpost/testing';
import { startOidcProvider, type TestOidcProvider } from '@outpost/testing/oidc';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/console-sso/', import.meta.url));
const gate = e2eGate('console single sign-on in headless Chromium', { commands: ['chromium'] });
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const CLIENT = { id: 'outpost-console', secret: 'a-client-secret-of-decent-length-1234567890' };

describe.runIf(gate.run)('single sign-on in the console (Chromium)', () => {
  let core: Core;
  let dir: string;
  let provider: TestOidcProvider;
  let browser: Browser;
  const problems: string[] = [];

  beforeAll(async () => {
    dir = await tempDir('outpost-console-sso-');
    const corePort = await freePort();
    const providerPort = await freePort();
    provider = await startOidcProvider({
      port: providerPort,
      client: CLIENT,
      redirectUris: [`http://127.0.0.1:${corePort}/api/v1/session/sso/callback`],
      accounts: { hanna: { username: 'hanna', groups: ['it-helpdesk'] }, sam: { username: 'sam', groups: ['sales'] } },
    });
    core = createCore(
      validateConfig(
        coreConfigSchema,
        {
          dataDir: dir,
          http: { host: '127.0.0.1', port: corePort },
          datagram: { host: '127.0.0.1', port: 0 },
          admins: { oidc: { issuer: provider.issuer, clientId: CLIENT.id, clientSecret: CLIENT.secret, groups: { 'it-helpdesk': { roles: ['viewer'], sites: ['hq'] } }, label: 'Corp SSO' } },
        },
        { file: 'e2e' },
      ),
      { logger: silentLogger() },
    );
    await core.start();
    const res = await fetch(`${core.url}/api/v1/sites`, { method: 'POST', headers: { authorization: `Bearer ${core.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'hq', subnets: ['10.1.0.0/16'] }) });
    expect(res.status).toBe(201);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  }, 90_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await core?.stop();
    await provider?.close();
    await removeDir(dir);
    expect(problems).toEqual([]);
  }, 30_000);

  const signInAt = async (user: string) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${core.url}/console/`);
    await page.getByRole('button', { name: 'Sign in with Corp SSO' }).click();
    // The provider's login page.
    await page.getByLabel('User').fill(user);
    await page.getByRole('button', { name: 'Log in' }).click();
    return { context, page };
  };

  it('a help-desk user clicks the SSO button, logs in at the provider and lands as a viewer scoped to hq', async () => {
    const { context, page } = await signInAt('hanna');
    await expect.poll(() => page.getByTestId('who-name').textContent(), { timeout: 20_000 }).toBe('hanna');
    expect(await page.getByTestId('who-role').allTextContents()).toEqual(['viewer']);
    expect(await page.getByTestId('who-scope').textContent()).toBe('sites: hq');
    expect(new URL(page.url()).pathname).toBe('/console/');
    await page.screenshot({ path: join(ARTIFACTS, 'signed-in.png') });
    // The session is the core's HttpOnly cookie; a change with it is refused for a viewer.
    const cookies = await context.cookies(core.url);
    expect(cookies.find((c) => c.name === 'outpost_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    const write = await page.evaluate(async () => (await fetch('/api/v1/sites', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', subnets: ['10.9.0.0/16'] }) })).status);
    expect(write).toBe(403);
    await context.close();
  }, 60_000);

  it('a user in no mapped group comes back to the sign-in page with the reason, and no session', async () => {
    const { context, page } = await signInAt('sam');
    await expect.poll(async () => (await page.getByRole('alert').locator('code').textContent().catch(() => null)) ?? '', { timeout: 20_000 }).toBe('CORE_SSO_NO_ROLE');
    expect((await context.cookies(core.url)).some((c) => c.name === 'outpost_session')).toBe(false);
    await context.close();
  }, 60_000);
});
