// Administrators in the console, end to end: a real core (port 0, level db in a temp
// dir) serving the built console, and headless Chromium (Debian `chromium`, driven by
// playwright-core). The owner creates a viewer (vera), an operator (olga) and a third
// account for the lockout through the API; each signs in with a password in a browser
// context of their own, sees their name and role, and is offered only the actions their
// role may take; the viewer's session is refused a change by the API, the cookie is
// HttpOnly and SameSite=Strict, a page of another site cannot use it, and sign-out ends
// it on the core. The audit page's test needs the audit module (branch `audit`).
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { e2eGate, grantFor, removeDir, tempDir, waitFor } from '@outpost/testing';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminOk, apiRequest } from './fixtures/e2e.js';

const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/console-admins/', import.meta.url));
const shot = (page: Page, name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
const gate = e2eGate('console administrators in headless Chromium', { commands: ['chromium'] });
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PASSWORDS = { vera: 'Lantern-Orchard-42', olga: 'Granite-Harbour-77', lars: 'Meadow-Compass-19', sam: 'Quarry-Beacon-Willow-5' } as const;
const SESSION_IDLE_MS = 30 * 60_000;
/** Buttons that change nothing (reload a list): allowed to everyone. Row and state pickers carry data-agent / data-state. */
const READ_ONLY_BUTTONS = new Set(['Refresh', 'Refresh agents']);

interface Fixture {
  core: Core;
  dir: string;
  url: string;
  owner: string;
  clock: { now(): number; advance(ms: number): void };
  packageId: string;
  agentId: string;
  runId: string;
}

/** The pages a viewer may open, each with what shows that its data has loaded. */
function pages(f: Fixture): Array<{ name: string; hash: string; loaded: string }> {
  return [
    { name: 'overview', hash: '#/overview', loaded: 'text=/1 agents in 1 sites/' },
    { name: 'sites', hash: '#/sites', loaded: 'tr[data-site="hq"]' },
    { name: 'site servers', hash: '#/site-servers', loaded: 'tr[data-server="pkg-1"]' },
    { name: 'agents', hash: '#/agents', loaded: '[data-agent="lab-1"]' },
    { name: 'agent', hash: `#/agents/${f.agentId}`, loaded: `a[href^="#/runs/${f.runId}"]` },
    { name: 'packages', hash: '#/packages', loaded: 'tr[data-package="demo"]' },
    { name: 'package', hash: `#/packages/${f.packageId}`, loaded: 'text=Agent downloads' },
    { name: 'runs', hash: '#/runs', loaded: `tr[data-run="${f.runId}"]` },
    { name: 'run', hash: `#/runs/${f.runId}`, loaded: `button[data-agent="${f.agentId}"]` },
    { name: 'boots', hash: '#/boots', loaded: 'h1:has-text("Computers & boots")' },
    { name: 'gateways', hash: '#/gateways', loaded: 'text=Nobody is blocked.' },
  ];
}

/** Everything on the page that would change something: forms, marked actions, and any other button. */
async function actionsOn(page: Page): Promise<string[]> {
  const marked = await page.locator('main form, main [data-action]').evaluateAll((els) => els.map((e) => `${e.tagName.toLowerCase()}: ${(e.getAttribute('aria-label') ?? e.textContent ?? '').trim()}`));
  const buttons = (await page.locator('main button:not([data-state]):not([data-agent])').allTextContents()).map((t) => t.trim()).filter((t) => !READ_ONLY_BUTTONS.has(t));
  return [...marked, ...buttons.map((t) => `button: ${t}`)];
}

async function open(page: Page, f: Fixture, hash: string, loaded: string): Promise<void> {
  await page.goto(`${f.url}/console/${hash}`);
  await page.locator(loaded).first().waitFor();
}

async function signInWithPassword(page: Page, f: Fixture, name: string, password: string): Promise<void> {
  await page.goto(`${f.url}/console/`);
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

describe('administrators in the console', () => {
  let f: Fixture;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const problems: string[] = [];

  /** A page in a browser context of its own; `expected` matches console errors the test provokes beyond refusals. */
  const newPage = async (expected?: RegExp): Promise<Page> => {
    const context = await browser!.newContext({ viewport: { width: 1360, height: 900 } });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    // Refusals the test provokes (401, 403, 429) are logged by the browser: expected.
    page.on('console', (m) => m.type() === 'error' && !/status of (401|403|429)/.test(m.text()) && !expected?.test(m.text()) && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    return page;
  };

  beforeAll(async () => {
    const dir = await tempDir('outpost-console-admins-');
    let t = Date.now();
    const clock = { now: () => t, advance: (ms: number) => void (t += ms) };
    const core = createCore(validateConfig(coreConfigSchema, { dataDir: dir, http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 } }, { file: 'e2e' }), { logger: silentLogger(), clock });
    await core.start();
    const c = { url: core.url, adminToken: core.adminToken };
    // Something on every page: a site, an agent in a run that stays active, an enabled package.
    await adminOk(c, 'POST', '/sites', { name: 'hq', subnets: ['10.1.0.0/16'] });
    for (const [name, role] of [['vera', 'viewer'], ['olga', 'operator'], ['lars', 'viewer']] as const) {
      await adminOk(c, 'POST', '/admins', { name, roles: [role], password: PASSWORDS[name] });
    }
    await adminOk(c, 'POST', '/admins', { name: 'sam', roles: ['operator', 'viewer'], sites: ['hq'], password: PASSWORDS.sam });
    const { token } = await adminOk<{ token: string }>(c, 'POST', '/tokens', { for: 'agent' });
    const enrolled = await fetch(`${c.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, name: 'lab-1', ips: ['10.1.0.5'] }) });
    expect(enrolled.status).toBe(201);
    const agent = { body: (await enrolled.json()) as { id: string } };
    await adminOk(c, 'POST', '/tasks', { name: 'hello', kind: 'command', program: process.execPath, args: ['-e', '1'], timeout: '30s' });
    await adminOk(c, 'POST', '/jobs', { name: 'say-hello', steps: [{ task: 'hello' }] });
    const run = await adminOk<{ id: string }>(c, 'POST', '/jobs/say-hello/runs', { agents: [agent.body.id] });
    const services = { package: { constrained: false, url: 'http://pkg-1.test:8081' } };
    const { token: ssToken } = await adminOk<{ token: string }>(c, 'POST', '/tokens', { for: 'site-server', grant: grantFor(services, { address: '10.1.0.2' }) });
    const ss = await fetch(`${c.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: ssToken, name: 'pkg-1', address: '10.1.0.2', services }) });
    expect(ss.status, await ss.clone().text()).toBe(201);
    const content = Buffer.alloc(1024, 7);
    const pkg = await adminOk<{ id: string }>(c, 'POST', '/packages', { name: 'demo', version: '1.0', files: [{ path: 'payload.bin', size: content.length, sha256: createHash('sha256').update(content).digest('hex') }] });
    const put = await fetch(`${c.url}/api/v1/packages/${pkg.id}/files/payload.bin?offset=0`, { method: 'PUT', headers: { authorization: `Bearer ${c.adminToken}`, 'content-type': 'application/octet-stream' }, body: content });
    expect(put.status, await put.text()).toBeLessThan(300);
    await adminOk(c, 'POST', `/packages/${pkg.id}/enable`, {});
    f = { core, dir, url: core.url, owner: core.adminToken, clock, packageId: pkg.id, agentId: agent.body.id, runId: run.id };
    await mkdir(ARTIFACTS, { recursive: true });
    if (gate.run) browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30_000 });
  }, 60_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await f?.core.stop();
    await removeDir(f?.dir);
    expect(problems).toEqual([]);
  }, 30_000);

  it.runIf(gate.run)('a viewer signs in with her password, sees her name and role, and is offered no action on any page', async () => {
    const page = await newPage();
    await signInWithPassword(page, f, 'vera', PASSWORDS.vera);
    await expect.poll(() => page.getByTestId('who-name').textContent(), { timeout: 15_000 }).toBe('vera');
    expect(await page.getByTestId('who-role').allTextContents()).toEqual(['viewer']);
    expect(await page.getByTestId('who-scope').textContent()).toBe('all sites');
    // Pages her role cannot read are not in the menu, and not reachable by address.
    const menu = (await page.locator('nav.side a').allTextContents()).map((t) => t.replace(/\d+$/, ''));
    expect(menu).toEqual(['Overview', 'Sites & subnets', 'Site servers', 'Agents', 'Packages', 'Jobs & runs', 'Computers & boots', 'Gateways']);
    for (const p of pages(f)) {
      await open(page, f, p.hash, p.loaded);
      expect(await actionsOn(page), p.name).toEqual([]);
      if (p.name === 'sites' || p.name === 'run') await shot(page, `viewer-${p.name}`);
    }
    await open(page, f, '#/tokens', 'text=No page here');
    await open(page, f, '#/audit', 'text=No page here');
  }, 90_000);

  it.runIf(gate.run)('a scoped administrator with two roles sees both roles and the scope in the header', async () => {
    const page = await newPage();
    await signInWithPassword(page, f, 'sam', PASSWORDS.sam);
    await expect.poll(() => page.getByTestId('who-role').allTextContents(), { timeout: 15_000 }).toEqual(['operator', 'viewer']);
    expect(await page.getByTestId('who-name').textContent()).toBe('sam');
    expect(await page.getByTestId('who-scope').textContent()).toBe('sites: hq');
  }, 30_000);

  it.runIf(gate.run)('the viewer’s session is refused a change by the API; the cookie is HttpOnly and SameSite=Strict, and nothing is in web storage', async () => {
    const page = await newPage();
    await signInWithPassword(page, f, 'vera', PASSWORDS.vera);
    await page.getByTestId('who-name').waitFor();
    const call = (method: string, path: string, body?: unknown) =>
      page.evaluate(
        async ([m, p, b]) => {
          const res = await fetch(`/api/v1${p}`, { method: m, credentials: 'same-origin', ...(b === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) }) });
          const text = await res.text();
          return { status: res.status, body: text ? (JSON.parse(text) as { error?: { code: string; details?: { permission?: string } }; name?: string }) : undefined };
        },
        [method, path, body] as const,
      );
    // The cookie is her session (the read works) ...
    const me = await call('GET', '/session');
    expect(me.status).toBe(200);
    expect(me.body?.name).toBe('vera');
    // ... and the change is refused, naming the permission; nothing is applied.
    const refused = await call('POST', '/sites', { name: 'vera-site', subnets: ['10.9.0.0/16'] });
    expect(refused.status).toBe(403);
    expect(refused.body?.error?.code).toBe('CORE_FORBIDDEN');
    expect(refused.body?.error?.details?.permission).toBe('sites.write');
    expect((await apiRequest(f.url, f.owner, 'GET', '/sites/vera-site')).status).toBe(404);
    // No script of the page can read the session, and the console keeps no credential.
    expect(await page.evaluate(() => document.cookie)).not.toContain('outpost_session');
    expect(await page.evaluate(() => sessionStorage.length + localStorage.length)).toBe(0);
    const [cookie] = (await page.context().cookies(f.url)).filter((c) => c.name === 'outpost_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
  }, 60_000);

  it.runIf(gate.run)('an operator is offered run, cancel, enable and disable, but not site or token management', async () => {
    const page = await newPage();
    await signInWithPassword(page, f, 'olga', PASSWORDS.olga);
    await expect.poll(() => page.getByTestId('who-role').allTextContents(), { timeout: 15_000 }).toEqual(['operator']);
    expect(await page.locator('nav.side a', { hasText: 'Enrollment tokens' }).count()).toBe(0);
    await open(page, f, '#/runs', `tr[data-run="${f.runId}"]`);
    await page.getByRole('form', { name: 'Start a run' }).getByRole('button', { name: 'Start run' }).waitFor();
    await open(page, f, `#/runs/${f.runId}`, `button[data-agent="${f.agentId}"]`);
    await page.getByRole('button', { name: 'Cancel run' }).waitFor();
    await open(page, f, `#/packages/${f.packageId}`, 'text=Agent downloads');
    await page.getByRole('button', { name: 'Disable' }).waitFor();
    await open(page, f, '#/sites', 'tr[data-site="hq"]');
    expect(await actionsOn(page)).toEqual([]);
    await open(page, f, '#/tokens', 'text=No page here');
  }, 60_000);

  it.runIf(gate.run)('the owner signs in with the bootstrap token and is offered site and token management', async () => {
    const page = await newPage();
    await page.goto(`${f.url}/console/`);
    await page.getByRole('button', { name: 'Sign in with an API token' }).click();
    await page.getByLabel('API token').fill('admin.wrong');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByText('The core does not accept that token.').waitFor();
    await page.getByLabel('API token').fill(f.owner);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect.poll(() => page.getByTestId('who-name').textContent(), { timeout: 15_000 }).toBe('admin');
    expect(await page.getByTestId('who-role').allTextContents()).toEqual(['owner']);
    await open(page, f, '#/sites', 'tr[data-site="hq"]');
    expect(await actionsOn(page)).toEqual(expect.arrayContaining(['button: Add site', 'button: Edit', 'button: Delete']));
    await open(page, f, '#/tokens', 'form[aria-label="Create an agent token"]');
    expect(await page.evaluate(() => sessionStorage.length + localStorage.length)).toBe(0);
  }, 60_000);

  it.runIf(gate.run)('a page of another site cannot use the session: a cross-site form post is refused and changes nothing', async () => {
    // The browser shows the refusal as a page, and asks the core for a favicon it has not.
    const page = await newPage(/status of 404/);
    await signInWithPassword(page, f, 'olga', PASSWORDS.olga);
    await page.getByTestId('who-name').waitFor();
    // The attacker's page, on another site (localhost is not 127.0.0.1): it posts a form
    // to the core's disable route, which needs no body (a top-level navigation, the one
    // case where a cookie without SameSite=Strict would still go along).
    const target = `${f.url}/api/v1/packages/${f.packageId}/disable`;
    const evil: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><form id="f" method="POST" action="${target}"></form><script>document.getElementById('f').submit()</script>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    try {
      const seen: number[] = [];
      page.on('response', (res) => res.url() === target && seen.push(res.status()));
      await page.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`);
      await waitFor(() => seen.length > 0, { timeoutMs: 10_000, what: 'the cross-site post to be answered' });
      expect(seen[0]).toBe(401);
      const pkg = await adminOk<{ enabled: boolean }>({ url: f.url, adminToken: f.owner }, 'GET', `/packages/${f.packageId}`);
      expect(pkg.enabled).toBe(true);
    } finally {
      await new Promise<void>((r) => evil.close(() => r()));
    }
  }, 60_000);

  it.runIf(gate.run)('a wrong password says so; the sixth in a row says the account is locked and when to retry', async () => {
    const page = await newPage();
    await signInWithPassword(page, f, 'lars', 'not-the-password-1');
    await page.getByText('Wrong name or password.').waitFor();
    await expect.poll(() => page.getByRole('alert').locator('code').textContent(), { timeout: 15_000 }).toBe('CORE_SIGN_IN_FAILED');
    // A refused sign-in empties the password field: that is when the answer is in.
    const password = page.getByLabel('Password', { exact: true });
    for (let i = 2; i <= 6; i++) {
      await password.fill(`not-the-password-${i}`);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await expect.poll(() => password.inputValue(), { timeout: 15_000 }).toBe('');
    }
    await page.getByText(/Too many failed sign-ins: this account is locked\. Try again in \d+ (s|min) \(at .+\)\./).waitFor();
    await shot(page, 'locked');
    expect(await page.getByRole('alert').locator('code').textContent()).toBe('CORE_SIGN_IN_LOCKED');
    // Locked means locked: the right password is refused the same way.
    await page.getByLabel('Password', { exact: true }).fill(PASSWORDS.lars);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect.poll(() => page.getByRole('alert').locator('code').textContent(), { timeout: 15_000 }).toBe('CORE_SIGN_IN_LOCKED');
    expect(await page.getByTestId('who-name').count()).toBe(0);
  }, 60_000);

  it.runIf(gate.run)('a failed single sign-on comes back with its code, shown with a readable message; no SSO button when it is not configured', async () => {
    const page = await newPage();
    await page.goto(`${f.url}/console/?sso_error=CORE_SSO_NO_ROLE`);
    await page.getByText(/Single sign-on failed\. .*none of your groups gives a role/).waitFor();
    expect(await page.getByRole('alert').locator('code').textContent()).toBe('CORE_SSO_NO_ROLE');
    // The code is taken off the address (a reload does not show it again).
    expect(new URL(page.url()).search).toBe('');
    // Anything else in the parameter is not echoed.
    await page.goto(`${f.url}/console/?sso_error=%3Cb%3Ehi%3C%2Fb%3E`);
    await page.getByText('Single sign-on failed. The provider or the core refused the sign-in.').waitFor();
    expect(await page.getByRole('alert').locator('code').textContent()).toBe('UNKNOWN');
    expect(await page.getByRole('button', { name: /^Sign in with (?!an API token|a name)/ }).count()).toBe(0);
  }, 30_000);

  it.runIf(gate.run)('sign-out returns to the sign-in page, and the core refuses the old cookie', async () => {
    const page = await newPage();
    await signInWithPassword(page, f, 'vera', PASSWORDS.vera);
    await page.getByTestId('who-name').waitFor();
    const [cookie] = (await page.context().cookies(f.url)).filter((c) => c.name === 'outpost_session');
    const withCookie = (): Promise<Response> => fetch(`${f.url}/api/v1/session`, { headers: { cookie: `outpost_session=${cookie!.value}` } });
    expect((await withCookie()).status).toBe(200);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Name', { exact: true }).waitFor();
    await page.getByText('You signed out.').waitFor();
    expect((await withCookie()).status).toBe(401);
    // A reload stays signed out.
    await page.reload();
    await page.getByLabel('Name', { exact: true }).waitFor();
    expect(await page.getByTestId('who-name').count()).toBe(0);
  }, 60_000);

  // Needs the audit module (branch `audit`): without it /api/v1/audit answers 404 and this fails.
  it.runIf(gate.run)('the audit page lists, filters and details entries, shows new ones live, and verifies the chain', async () => {
    // A refused attempt by the viewer, with her session cookie.
    const signedIn = await fetch(`${f.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'vera', password: PASSWORDS.vera }) });
    expect(signedIn.status).toBe(200);
    const veraCookie = /outpost_session=[^;]+/.exec(signedIn.headers.get('set-cookie') ?? '')![0];
    const refused = await fetch(`${f.url}/api/v1/sites`, { method: 'POST', headers: { cookie: veraCookie, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'audit-probe', subnets: [] }) });
    expect(refused.status).toBe(403);

    const page = await newPage();
    await page.goto(`${f.url}/console/`);
    await page.getByRole('button', { name: 'Sign in with an API token' }).click();
    await page.getByLabel('API token').fill(f.owner);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByTestId('who-name').waitFor();
    await page.locator('nav.side a', { hasText: 'Audit log' }).click();
    await page.locator('tr[data-seq]').first().waitFor();
    await page.getByText('new entries appear as they are recorded').waitFor();

    // Filters: the viewer's refused attempts only.
    await page.getByLabel('Administrator').fill('vera');
    await page.getByLabel('Result').selectOption('refused');
    await page.waitForURL(/#\/audit\?.*admin=vera/);
    await waitFor(async () => {
      const rows = await page.locator('tr[data-seq]').evaluateAll((trs) => trs.map((tr) => [tr.children[1]?.textContent ?? '', tr.children[5]?.textContent ?? '']));
      return rows.length > 0 && rows.every(([who, outcome]) => who.startsWith('vera') && outcome.startsWith('refused'));
    }, { timeoutMs: 10_000, what: 'only the viewer\'s refused entries' });
    await page.locator('tr[data-seq]').first().click();
    await page.getByTestId('audit-details').getByText('POST /api/v1/sites').waitFor();
    await shot(page, 'audit-filtered');

    // Live: a change made now appears without a reload, at the top.
    await page.goto(`${f.url}/console/#/audit`);
    await page.getByText('new entries appear as they are recorded').waitFor();
    await page.locator('tr[data-seq]').first().waitFor();
    const top = Number(await page.locator('tr[data-seq]').first().getAttribute('data-seq'));
    await adminOk({ url: f.url, adminToken: f.owner }, 'POST', '/sites', { name: 'audit-live', subnets: ['10.77.0.0/16'] });
    await waitFor(async () => Number(await page.locator('tr[data-seq]').first().getAttribute('data-seq')) > top, { timeoutMs: 10_000, what: 'the new entry to appear live' });
    const first = page.locator('tr[data-seq]').first();
    expect(await first.locator('td').nth(1).textContent()).toMatch(/^admin/);
    expect(await first.locator('td').nth(5).textContent()).toMatch(/^ok/);

    // The chain verifies.
    await page.getByRole('button', { name: 'Verify chain' }).click();
    await expect.poll(() => page.getByTestId('audit-verify').textContent(), { timeout: 15_000 }).toMatch(/^Chain intact: \d+ entries/);
    await shot(page, 'audit');

    // Since: nothing is newer than tomorrow.
    const tomorrow = new Date(Date.now() + 86_400_000);
    const pad = (n: number): string => String(n).padStart(2, '0');
    await page.getByLabel('Since').fill(`${tomorrow.getFullYear()}-${pad(tomorrow.getMonth() + 1)}-${pad(tomorrow.getDate())}T00:00`);
    await page.getByText('No entries match.').waitFor();
  }, 60_000);

  it.runIf(gate.run)('an expired session returns to the sign-in page saying why', async () => {
    const page = await newPage();
    await signInWithPassword(page, f, 'olga', PASSWORDS.olga);
    await page.getByTestId('who-name').waitFor();
    await open(page, f, '#/sites', 'tr[data-site="hq"]');
    f.clock.advance(SESSION_IDLE_MS + 60_000);
    await page.locator('nav.side a', { hasText: 'Packages' }).click();
    await page.getByText('Your session ended (idle too long). Sign in again.').waitFor();
    await page.getByLabel('Name', { exact: true }).waitFor();
  }, 60_000);
});
