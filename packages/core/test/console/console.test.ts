import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger, validateConfig } from '@outpost/common';
import { expectErrorsDocumented, removeDir, tempDir } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { coreConfigSchema, createCore, type Core } from '../../src/index.js';
import { ConsoleErrors } from '../../src/console/errors.js';

let dir: string | undefined;
let core: Core | undefined;
afterEach(async () => {
  await core?.stop();
  core = undefined;
  await removeDir(dir);
});

async function start(console: Record<string, unknown>): Promise<Core> {
  dir = await tempDir('outpost-console-');
  const assets = join(dir, 'assets-dir');
  await mkdir(join(assets, 'assets'), { recursive: true });
  await writeFile(join(assets, 'index.html'), '<!doctype html><script type="module" src="/console/assets/app-abc123.js"></script>');
  await writeFile(join(assets, 'assets', 'app-abc123.js'), `console.log(${JSON.stringify('x'.repeat(4000))});`);
  const config = validateConfig(coreConfigSchema, { dataDir: join(dir, 'core'), http: { port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, console: { assetsDir: assets, ...console } }, { file: 'test' });
  core = createCore(config, { logger: silentLogger() });
  await core.start();
  return core;
}

async function readEvents(res: Response, count: number, timeoutMs: number): Promise<string[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: string[] = [];
  let buf = '';
  const deadline = Date.now() + timeoutMs;
  while (events.length < count && Date.now() < deadline) {
    const next = await Promise.race([reader.read(), new Promise<undefined>((r) => setTimeout(() => r(undefined), Math.max(1, deadline - Date.now())))]);
    if (!next || next.done) break;
    buf += decoder.decode(next.value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = /^data: (.*)$/m.exec(frame);
      if (/^event: snapshot$/m.test(frame) && data) events.push(data[1]!);
    }
  }
  await reader.cancel().catch(() => undefined);
  return events;
}

describe('console module', () => {
  it('serves index.html with no-cache and the CSP, hashed assets immutable and gzipped, / redirects', async () => {
    const c = await start({});
    const root = await fetch(`${c.url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/console/');
    const index = await fetch(`${c.url}/console/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(index.headers.get('x-frame-options')).toBe('DENY');
    const etag = index.headers.get('etag')!;
    expect((await fetch(`${c.url}/console/`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    const js = await fetch(`${c.url}/console/assets/app-abc123.js`, { headers: { 'accept-encoding': 'gzip' } });
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(js.headers.get('content-encoding')).toBe('gzip');
    expect((await js.text()).length).toBeGreaterThan(4000);
    expect((await fetch(`${c.url}/console/assets/missing.js`)).status).toBe(404);
  });

  it('answers 503 with how to build it when the console is not built', async () => {
    dir = await tempDir('outpost-console-');
    const config = validateConfig(coreConfigSchema, { dataDir: join(dir, 'core'), http: { port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, console: { assetsDir: join(dir, 'nothing') } }, { file: 'test' });
    core = createCore(config, { logger: silentLogger() });
    await core.start();
    const res = await fetch(`${core.url}/console/`);
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('npm run build -w @outpost/console');
  });

  it('gives the live feed and snapshot to the admin only, coalesced, and sends a change', async () => {
    const c = await start({ updateInterval: '100ms' });
    expect((await fetch(`${c.url}/api/v1/console/events`)).status).toBe(401);
    const auth = { authorization: `Bearer ${c.adminToken}` };
    const snap = (await (await fetch(`${c.url}/api/v1/console/snapshot`, { headers: auth })).json()) as { agents: { total: number }; sites: number };
    expect(snap).toMatchObject({ agents: { total: 0 }, sites: 0 });
    const res = await fetch(`${c.url}/api/v1/console/events`, { headers: auth });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reading = readEvents(res, 2, 5_000);
    await new Promise((r) => setTimeout(r, 400));
    await fetch(`${c.url}/api/v1/sites`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'hq', subnets: ['10.1.0.0/16'] }) });
    const events = (await reading).map((e) => JSON.parse(e) as { sites: number });
    // The first snapshot at once, then nothing while nothing changed, then the change.
    expect(events.map((e) => e.sites)).toEqual([0, 1]);
    const stats = c.stats() as { console: { snapshots: number; skipped: number } };
    expect(stats.console.skipped).toBeGreaterThan(0);
  });

  it('refuses live feeds past maxClients with CORE_CONSOLE_TOO_MANY_CLIENTS', async () => {
    const c = await start({ maxClients: 1 });
    const auth = { authorization: `Bearer ${c.adminToken}` };
    const first = await fetch(`${c.url}/api/v1/console/events`, { headers: auth });
    const second = await fetch(`${c.url}/api/v1/console/events`, { headers: auth });
    expect(second.status).toBe(503);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe(ConsoleErrors.TOO_MANY_CLIENTS);
    await first.body?.cancel();
  });

  it('ends open live feeds cleanly when the core stops, before the listener closes', async () => {
    const c = await start({});
    const res = await fetch(`${c.url}/api/v1/console/events`, { headers: { authorization: `Bearer ${c.adminToken}` } });
    const reader = res.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    const stopping = c.stop();
    // A clean end of the stream (its last chunk), not a connection the listener cut.
    const drain = async (): Promise<'ended' | 'cut'> => {
      for (;;) {
        const r = await reader.read().catch(() => undefined);
        if (!r) return 'cut';
        if (r.done) return 'ended';
      }
    };
    expect(await drain()).toBe('ended');
    await stopping;
    core = undefined;
  });

  it('documents every error code', async () => {
    await expectErrorsDocumented(fileURLToPath(new URL('../../src/console/README.md', import.meta.url)), Object.values(ConsoleErrors));
  });
});
