// The site link (`@outpost/common/site-link`) against a real core: enrollment, identity
// kept across restarts, heartbeat keeping the site server online, a deleted identity
// reported, the tickle listener's drops; and netboot staying online through it.
import { createSocket } from 'node:dgram';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { DatagramType, TickleFlags, datagramKey, encodeDatagram, openDatabase, parseCredential, silentLogger, sublevel, validateConfig } from '@outpost/common';
import { createSiteLink, SiteLinkErrors, type SiteLink, type SiteLinkOptions } from '@outpost/common/site-link';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { createNetboot, type Netboot } from '@outpost/netboot';
import { grantFor, removeDir, tempDir, waitFor, type StatedServices } from '@outpost/testing';
import { adminApi, cleanupAfterEach, testTaskServer } from './fixtures/e2e.js';

const HEARTBEAT_MS = 200;
const MISSED = 2;

let dir: string;
let core: Core;
const cleanup = cleanupAfterEach();

/** A site-server enrollment token (one place, for the grant the core will ask for). */
async function siteServerToken(services: StatedServices = { netboot: {} }): Promise<string> {
  return (await core.createEnrollmentToken({ for: 'site-server', grant: grantFor(services) })).token;
}

function link(over: Partial<SiteLinkOptions> = {}): SiteLink {
  const l = createSiteLink({ coreUrl: core.url, dataDir: join(dir, 'ss'), name: 'ss-1', log: silentLogger(), token: {}, services: () => ({ netboot: {} }), ...over });
  cleanup(() => l.stop());
  return l;
}

const state = async (id: string): Promise<string> => (await adminApi<{ state: string }>(core, 'GET', `/site-servers/${id}`)).body.state;

beforeEach(async () => {
  dir = await tempDir('outpost-site-link-');
  core = createCore(
    validateConfig(
      coreConfigSchema,
      { dataDir: join(dir, 'core'), http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, siteServers: { heartbeatInterval: `${HEARTBEAT_MS}ms`, offlineAfterMissed: MISSED } },
      { file: 'site-link-test' },
    ),
    { logger: silentLogger() },
  );
  await core.start();
  cleanup(async () => {
    await core.stop();
    await removeDir(dir);
  });
});

describe('site link', () => {
  it('enrolls with a token (never logged), keeps identity.json 0600, and a restart keeps the identity without a token', async () => {
    const token = await siteServerToken();
    const raw: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        raw.push(chunk.toString('utf8'));
        done();
      },
    });
    const first = link({ token: { enrollToken: token }, log: pino({ level: 'trace' }, sink) });
    await first.start();
    const id = first.id!;
    expect(id).toMatch(/^ss_/);
    const file = join(dir, 'ss', 'identity.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ version: 1, id, coreUrl: core.url });
    expect(raw.join('')).not.toContain(token);
    expect(raw.join('')).not.toContain(first.identity!.credential);
    await first.stop();
    const again = link();
    await again.start();
    expect(again.id).toBe(id);
    expect(again.stats()).toMatchObject({ state: 'online', enrollments: 0 });
    expect(await state(id)).toBe('online');
  });

  it('refuses a used or unknown token with SITE_LINK_ENROLL_REJECTED, and no token with SITE_LINK_NO_ENROLL_TOKEN', async () => {
    await expect(link({ token: { enrollToken: 'nope.nope' } }).start()).rejects.toMatchObject({ code: SiteLinkErrors.ENROLL_REJECTED });
    await expect(link().start()).rejects.toMatchObject({ code: SiteLinkErrors.NO_ENROLL_TOKEN });
  });

  it('a corrupt identity file stops the start with SITE_LINK_IDENTITY_CORRUPT naming the file', async () => {
    const l = link({ token: { enrollToken: await siteServerToken() } });
    await l.start();
    await l.stop();
    const file = join(dir, 'ss', 'identity.json');
    await writeFile(file, '{"version":1,"id":');
    const err = await link().start().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: SiteLinkErrors.IDENTITY_CORRUPT, details: { file } });
  });

  it("heartbeats at the core's interval: online past offlineAfterMissed intervals, offline once stopped", async () => {
    const l = link({ token: { enrollToken: await siteServerToken() } });
    await l.start();
    const id = l.id!;
    expect(l.stats().heartbeatIntervalMs).toBe(HEARTBEAT_MS);
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, HEARTBEAT_MS * MISSED));
      expect(await state(id)).toBe('online');
    }
    expect(l.stats().heartbeats).toBeGreaterThanOrEqual(6);
    await l.stop();
    await waitFor(async () => (await state(id)) === 'offline', { timeoutMs: 5_000 });
  });

  it('reports clearly when the core deleted the site server (401): state identity-unknown, an error log with the code', async () => {
    const cap: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        cap.push(chunk.toString('utf8'));
        done();
      },
    });
    const l = link({ token: { enrollToken: await siteServerToken() }, log: pino({ level: 'info' }, sink) });
    await l.start();
    expect((await adminApi(core, 'DELETE', `/site-servers/${l.id}`)).status).toBe(204);
    expect(await l.heartbeat()).toBe(false);
    expect(l.stats()).toMatchObject({ state: 'identity-unknown', lastError: SiteLinkErrors.IDENTITY_UNKNOWN });
    const lines = cap.join('').split('\n').filter(Boolean).map((s) => JSON.parse(s) as { level: number; code?: string });
    expect(lines.some((x) => x.level === 50 && x.code === SiteLinkErrors.IDENTITY_UNKNOWN)).toBe(true);
  });

  it('delivers good tickles to the handler of each flag; drops and counts forged, replayed and garbage datagrams', async () => {
    const got: number[] = [];
    const packages = (flags: number): void => void got.push(flags);
    const l = link({ token: { enrollToken: await siteServerToken() }, tickles: { host: '127.0.0.1', port: 0, on: { PACKAGES: packages, CONFIG: packages } } });
    await l.start();
    const [host, port] = l.tickleAddress.split(':') as [string, string];
    const s = createSocket('udp4');
    cleanup(async () => void s.close());
    const send = (b: Buffer): Promise<void> => new Promise((r) => s.send(b, Number(port), host, () => r()));
    const rightKey = datagramKey(parseCredential(l.identity!.credential)!.secret);
    const tickle = (key: Buffer, sender: string, seq: number): Buffer =>
      encodeDatagram({ type: DatagramType.TICKLE, flags: TickleFlags.PACKAGES, timestamp: Date.now(), seq, sender, payload: Buffer.alloc(0) }, key);

    core.tickle([l.id!], TickleFlags.PACKAGES | TickleFlags.CONFIG);
    await waitFor(() => got.length === 1);
    core.tickle([l.id!], TickleFlags.WORK);
    await send(tickle(datagramKey('not-the-key'), 'core', 1));
    await send(tickle(rightKey, 'mallory', 1));
    const good = tickle(rightKey, 'core', 1);
    await send(good);
    await send(good);
    await send(Buffer.from('hello'));
    await waitFor(() => (l.stats().tickles?.received ?? 0) >= 7);
    const t = l.stats().tickles!;
    expect(t.dropped).toMatchObject({ 'bad-mac': 1, 'unknown-sender': 1, 'too-short': 1 });
    expect(t.dropped.replay ?? 0).toBeGreaterThanOrEqual(1);
    expect(t.accepted).toBe(3);
    // One call per tickle whatever flags it carries; a WORK-only tickle has no handler here.
    expect(got).toEqual([TickleFlags.PACKAGES | TickleFlags.CONFIG, TickleFlags.PACKAGES]);
  });
});

describe('netboot over the site link', () => {
  function netboot(token?: string): Netboot {
    const nb = createNetboot(
      {
        coreUrl: core.url,
        dataDir: join(dir, 'netboot'),
        ...(token ? { enrollToken: token } : {}),
        serverAddress: '127.0.0.1',
        proxyDhcp: { enabled: false },
        tftp: { enabled: false },
        http: { host: '127.0.0.1', port: 0 },
      },
      { logger: silentLogger() },
    );
    cleanup(() => nb.stop());
    return nb;
  }

  it('stays online at the core across offlineAfterMissed intervals, and after a restart', async () => {
    const nb = netboot(await siteServerToken());
    await nb.start();
    const list = await adminApi<{ items: Array<{ id: string; name: string; services: Record<string, unknown> }> }>(core, 'GET', '/site-servers');
    const id = list.body.items.find((s) => 'netboot' in s.services)!.id;
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, HEARTBEAT_MS * MISSED));
      expect(await state(id)).toBe('online');
    }
    await nb.stop();
    await waitFor(async () => (await state(id)) === 'offline', { timeoutMs: 5_000 });
    const again = netboot();
    await again.start();
    expect(await state(id)).toBe('online');
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, HEARTBEAT_MS * MISSED));
      expect(await state(id)).toBe('online');
    }
    expect((again.stats().link as { id: string }).id).toBe(id);
    // Its heartbeats report health and load (netboot's TFTP sessions), which the admin sees.
    const view = await adminApi<{ health?: { status: string; load?: Record<string, number> } }>(core, 'GET', `/site-servers/${id}`);
    expect(view.body.health).toMatchObject({ status: 'ok', load: { tftpSessions: 0, tftpWaiting: 0, dhcpRunning: 0 } });
    // A healthy netboot raises no alarm on the console's overview (it used to show offline).
    const snapshot = await adminApi<{ alarms: Array<{ text: string }> }>(core, 'GET', '/console/snapshot');
    expect(snapshot.body.alarms.filter((a) => a.text.includes(list.body.items.find((s) => s.id === id)!.name))).toEqual([]);
  });
});

describe('task server over the site link', () => {
  it("moves an identity kept in the level db's meta (earlier versions) to identity.json once, keeping its id", async () => {
    const dataDir = join(dir, 'ts');
    const first = testTaskServer({ coreUrl: core.url, dataDir, name: 'ts-1', enrollToken: await siteServerToken({ task: {} }) });
    cleanup(() => first.stop());
    await first.start();
    const id = first.id;
    await first.stop();
    // What an earlier version left: the identity in meta, no identity.json.
    const file = join(dataDir, 'identity.json');
    const { version: _v, ...old } = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await rm(file);
    const db = await openDatabase(dataDir);
    await sublevel(db, 'meta').put('identity', old);
    await db.close();
    const again = testTaskServer({ coreUrl: core.url, dataDir, name: 'ts-1' });
    cleanup(() => again.stop());
    await again.start();
    expect(again.id).toBe(id);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ version: 1, id });
    expect(await state(id)).toBe('online');
    await again.stop();
    const check = await openDatabase(dataDir);
    expect(await sublevel(check, 'meta').get('identity')).toBeUndefined();
    await check.close();
  });
});
