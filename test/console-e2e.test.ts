// The console's "done when", end to end: `outpost start` on a temp copy
// of configs/all-in-one.yaml (every port 0, data under a temp dir), a small swarm of
// simulated agents next to the appliance's own agent, and headless Chromium (Debian's
// `chromium`, driven by playwright-core) that signs in, adds a site, starts a run and
// watches it reach 100 %, and watches a package become ready on the package server.
// Screenshots of the main pages go to test-artifacts/console/. (Every service's
// /metrics and the log ids: operability-e2e.test.ts.)
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTaskSwarm, type TaskSwarm, type TaskSwarmResult } from '@outpost/agent';
import { readConfigFile } from '@outpost/common';
import { e2eGate, loopbackConfig, removeDir, tempDir, waitFor } from '@outpost/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOutpost, type Running } from '../appliance/test/helpers.js';

const gate = e2eGate('console in headless Chromium', { commands: ['chromium'] });
const ALL_IN_ONE = fileURLToPath(new URL('../configs/all-in-one.yaml', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/console/', import.meta.url));
const SWARM = 12;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface Appliance {
  dir: string;
  url: string;
  token: string;
  outpost: Running;
}

async function api<T>(a: Appliance, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${a.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${a.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Adds a one-file package through the upload protocol and returns its id. */
async function addPackage(a: Appliance, name: string, content: Buffer): Promise<string> {
  const sha256 = createHash('sha256').update(content).digest('hex');
  const pkg = await api<{ id: string }>(a, 'POST', '/packages', { name, version: '1.0', files: [{ path: 'payload.bin', size: content.length, sha256 }] });
  const res = await fetch(`${a.url}/api/v1/packages/${pkg.id}/files/payload.bin?offset=0`, { method: 'PUT', headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/octet-stream' }, body: content });
  expect(res.status, await res.text()).toBeLessThan(300);
  return pkg.id;
}

describe('console on a running all-in-one appliance', () => {
  let a: Appliance;
  let swarm: TaskSwarm | undefined;
  let browser: Browser | undefined;
  let packageServerUrl = '';
  let taskServerUrl = '';

  beforeAll(async () => {
    const dir = await tempDir('outpost-console-');
    const raw = await readConfigFile(ALL_IN_ONE);
    const config = loopbackConfig({ ...raw, log: { level: 'warn' } }, 'http://127.0.0.1:8080');
    await mkdir(join(dir, 'configs'));
    await writeFile(join(dir, 'configs', 'test.json'), JSON.stringify(config, null, 2));
    const outpost = startOutpost(['--config', 'configs/test.json'], { cwd: dir });
    const url = await outpost.banner(30_000);
    expect(outpost.stdout).toContain(`console      ${url}/console/`);
    a = { dir, url, token: (await readFile(join(dir, 'var', 'core', 'admin-token'), 'utf8')).trim(), outpost };
    // The local agent and the site servers enroll as the appliance starts.
    const servers = await waitFor(
      async () => {
        const s = await api<{ items: Array<{ name: string; state: string; services: { task?: { url: string }; package?: { url: string } } }> }>(a, 'GET', '/site-servers');
        const ts = s.items.find((x) => x.services.task);
        const ps = s.items.find((x) => x.services.package);
        return ts && ps && { ts, ps };
      },
      { timeoutMs: 20_000, what: 'the task and package servers to enroll' },
    );
    taskServerUrl = servers.ts.services.task!.url;
    packageServerUrl = servers.ps.services.package!.url;
    await waitFor(async () => (await api<{ items: unknown[] }>(a, 'GET', '/agents')).items.length >= 1, { timeoutMs: 20_000, what: 'the local agent' });
    await api(a, 'POST', '/tasks', { name: 'hello', kind: 'command', program: process.execPath, args: ['-e', 'console.log("hello from " + process.pid)'], timeout: '30s' });
    await api(a, 'POST', '/jobs', { name: 'say-hello', steps: [{ task: 'hello' }] });
  }, 90_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await swarm?.close().catch(() => undefined);
    const stopped = await a?.outpost.stop('SIGINT', 20_000);
    await removeDir(a?.dir);
    expect(stopped?.code).toBe(0);
  }, 40_000);

  it.runIf(gate.run)('a newcomer signs in, adds a site, runs a job to 100 % and sees a package ready, live', async () => {
    const { token } = await api<{ token: string }>(a, 'POST', '/tokens', { for: 'agent', uses: SWARM });
    swarm = createTaskSwarm({ coreUrl: a.url, enrollToken: token, count: SWARM, namePrefix: 'console-swarm' });
    expect((await swarm.enroll()).enrolled).toBe(SWARM);
    await swarm.attach('tickle');
    const swarmDone: Promise<TaskSwarmResult> = swarm.awaitRun('say-hello', 40_000);

    await mkdir(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30_000 });
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const page: Page = await context.newPage();
    page.setDefaultTimeout(20_000);
    const problems: string[] = [];
    // The wrong token below is refused with a 401 (as are the look for a session before sign-in and the call after sign-out), which the browser logs: expected.
    page.on('console', (m) => m.type() === 'error' && !/status of 401/.test(m.text()) && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    const nav = (name: string) => page.locator('nav.side').getByRole('link', { name, exact: true });
    const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

    // Nothing without a session: the API refuses, and the page asks for a sign-in. The
    // bootstrap owner has no password: it signs in with its token, which the core trades
    // for an HttpOnly session cookie.
    expect((await fetch(`${a.url}/api/v1/console/snapshot`)).status).toBe(401);
    await page.goto(`${a.url}/`);
    await page.getByLabel('Name', { exact: true }).waitFor();
    expect(page.url()).toBe(`${a.url}/console/`);
    await page.getByRole('button', { name: 'Sign in with an API token' }).click();
    await page.getByLabel('API token').fill('admin.wrong');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByText('The core does not accept that token.').waitFor();
    await page.getByLabel('API token').fill(a.token);
    await shot('01-sign-in');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByTestId('who-name').waitFor();
    expect(await page.getByTestId('who-role').allTextContents()).toEqual(['owner']);

    // Overview, live: the swarm and the local agent are counted.
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByText('live', { exact: true }).waitFor();
    await page.locator('.stat.s-online .stat-value, .stat.s-poll-only .stat-value').first().waitFor();
    await waitFor(async () => (await page.getByText(`${SWARM + 1} agents in`).count()) > 0, { timeoutMs: 15_000, what: 'the overview to count every agent' });
    await shot('02-overview');

    // Sites: add one.
    await nav('Sites & subnets').click();
    await page.getByRole('button', { name: 'Add site' }).first().click();
    const form = page.getByRole('form', { name: 'Add a site' });
    await form.getByLabel('Name').fill('hq');
    await form.getByLabel('Subnets').fill('127.0.0.0/8, 10.1.0.0/16');
    await form.getByLabel('Description').fill('Head office');
    await form.getByRole('button', { name: 'Add site' }).click();
    await page.locator('tr[data-site="hq"]').waitFor();
    expect((await api<{ subnets: string[] }>(a, 'GET', '/sites/hq')).subnets).toEqual(['127.0.0.0/8', '10.1.0.0/16']);
    await shot('03-sites');

    // Jobs & runs: start a run on every agent; the run page counts up to 100 % live.
    await nav('Jobs & runs').click();
    const start = page.getByRole('form', { name: 'Start a run' });
    await start.getByLabel('Job').selectOption('say-hello');
    await start.getByLabel('On').selectOption('all');
    await start.getByRole('button', { name: 'Start run' }).click();
    await page.waitForURL(/#\/runs\/[\w-]+$/);
    const runId = decodeURIComponent(page.url().split('#/runs/')[1]!);
    await expect.poll(() => page.getByTestId('run-percent').textContent(), { timeout: 40_000, interval: 250 }).toBe('100 %');
    const run = await api<{ counts: Record<string, number>; agents: number }>(a, 'GET', `/runs/${runId}`);
    expect(run.agents).toBe(SWARM + 1);
    expect(run.counts.succeeded).toBe(SWARM + 1);
    expect((await swarmDone).reported).toBe(SWARM);
    // Once the run ended, the agent list shows every agent's final state (not the
    // `fetched` it had when the list was last loaded).
    await waitFor(async () => (await page.locator('button[data-agent] .badge.s-succeeded').count()) === SWARM + 1, { timeoutMs: 15_000, what: 'every agent row to show succeeded' });
    expect(await page.locator('button[data-agent] .badge:not(.s-succeeded)').count()).toBe(0);
    // Per-agent step results: the local agent's output.
    const local = (await api<{ items: Array<{ id: string; name: string }> }>(a, 'GET', '/agents?limit=100')).items.find((x) => !x.name.startsWith('console-swarm'))!;
    await page.locator(`button[data-agent="${local.id}"]`).click();
    await page.getByText(/hello from \d+/).waitFor();
    await shot('04-run');

    // Packages: enable one; the page shows it ready on the package server with its codebase.
    const pkgId = await addPackage(a, 'console-demo', Buffer.alloc(3 * 1024 * 1024, 7));
    await api(a, 'POST', `/packages/${pkgId}/enable`, {});
    await page.goto(`${a.url}/console/#/packages/${pkgId}`);
    await page.getByRole('heading', { name: 'console-demo@1.0' }).waitFor();
    await page.locator('tr[data-server] .badge.s-ready').waitFor({ timeout: 30_000 });
    await page.getByText(packageServerUrl, { exact: false }).first().waitFor();
    await shot('05-package');
    await nav('Packages').click();
    await page.locator('tr[data-package="console-demo"]').waitFor();

    // The other pages render with their data.
    await nav('Agents').click();
    await page.locator('[data-agent^="console-swarm"]').first().waitFor();
    await page.getByLabel('Search agents').fill('console-swarm-1');
    await waitFor(async () => (await page.locator('[data-agent="console-swarm-1"]').count()) === 1 && (await page.locator('a[data-agent^="console-swarm"]').count()) < SWARM, { timeoutMs: 10_000, what: 'the search to filter' });
    await shot('06-agents');
    await page.goto(`${a.url}/console/#/agents/${local.id}`);
    await page.getByRole('heading', { name: 'Run history' }).waitFor();
    await page.locator(`a[href^="#/runs/${runId}"]`).waitFor();
    await shot('07-agent');
    await nav('Site servers').click();
    await page.locator('tr[data-server] .badge.s-online').first().waitFor();
    await shot('08-site-servers');
    await nav('Computers & boots').click();
    await page.getByRole('heading', { name: 'Computers & boots' }).waitFor();
    await shot('09-boots');
    await nav('Gateways').click();
    await page.locator('tr[data-gateway]').first().waitFor({ timeout: 30_000 });
    await shot('10-gateways');
    await nav('Overview').click();
    await page.getByText('Nothing needs attention.').waitFor();
    await shot('11-overview-after');

    // Signing out ends the session; the console never kept a credential of its own.
    expect(await page.evaluate(() => sessionStorage.length + localStorage.length)).toBe(0);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Name', { exact: true }).waitFor();
    expect(await page.evaluate(async () => (await fetch('/api/v1/console/snapshot')).status)).toBe(401);
    expect(problems).toEqual([]);
  }, 120_000);
});
