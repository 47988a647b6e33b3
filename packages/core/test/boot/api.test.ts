import { join } from 'node:path';
import { silentLogger, validateConfig } from '@outpost/common';
import { grantFor, removeDir, tempDir } from '@outpost/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { coreConfigSchema, createCore, type Core } from '../../src/index.js';

let dir: string;
let core: Core;

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${core.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${core.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

beforeEach(async () => {
  dir = await tempDir('outpost-core-boot-');
  core = createCore(validateConfig(coreConfigSchema, { dataDir: join(dir, 'core'), http: { port: 0 }, datagram: { host: '127.0.0.1', port: 0 } }, { file: 'test' }), { logger: silentLogger() });
  await core.start();
  expect((await api('POST', '/boot/images', { name: 'linux', package: 'linux-pkg', kernel: 'vmlinuz', initrd: ['initrd.img'], cmdline: 'quiet' })).status).toBe(201);
  expect((await api('POST', '/boot/images', { name: 'rescue', package: 'rescue-pkg', script: 'boot.ipxe' })).status).toBe(201);
});
afterEach(async () => {
  await core.stop();
  await removeDir(dir);
});

describe('boot decisions', () => {
  it('an unknown MAC gets the default menu and is recorded as discovered; a predefined one gets its image and job', async () => {
    const unknown = await api('POST', '/boot/decide', { mac: '52:54:00:00:00:01', consume: true });
    expect(unknown.body).toMatchObject({ kind: 'unknown' });
    expect(String(unknown.body.script)).toMatch(/^#!ipxe\n[\s\S]*menu Outpost network boot[\s\S]*item img0 linux/);
    expect((await api('GET', '/boot/computers/52:54:00:00:00:01')).body).toMatchObject({ kind: 'discovered' });

    const added = await api('POST', '/boot/computers', { macs: ['52:54:00:00:00:01'], image: 'linux', job: 'install' });
    expect(added.status).toBe(200); // the discovered computer became predefined
    const d = await api('POST', '/boot/decide', { mac: '52-54-00-00-00-01', consume: true });
    expect(d.body).toMatchObject({ kind: 'predefined', image: 'linux', job: 'install' });
    expect(String(d.body.script)).toContain('kernel ${outpost-base}/images/linux/vmlinuz quiet outpost.computer=');
    expect(String(d.body.script)).toContain('initrd ${outpost-base}/images/linux/initrd.img');
    expect((await api('POST', '/boot/computers', { macs: ['52:54:00:00:00:01'], image: 'linux' })).body).toMatchObject({ error: { code: 'CORE_BOOT_COMPUTER_EXISTS' } });
  });

  it('"reboot to automation" boots the chosen image once and is cleared when the script is served', async () => {
    await api('POST', '/boot/computers', { macs: ['52:54:00:00:00:02'], image: 'linux' });
    expect((await api('POST', '/boot/automation', { mac: '52:54:00:00:00:02', image: 'rescue', job: 'fix' })).status).toBe(200);
    const peek = await api('POST', '/boot/decide', { mac: '52:54:00:00:00:02' });
    expect(peek.body).toMatchObject({ image: 'rescue', ttlMs: 0 });
    const once = await api('POST', '/boot/decide', { mac: '52:54:00:00:00:02', consume: true });
    expect(once.body).toMatchObject({ image: 'rescue', job: 'fix' });
    expect(String(once.body.script)).toContain('chain ${outpost-base}/images/rescue/boot.ipxe');
    const after = await api('POST', '/boot/decide', { mac: '52:54:00:00:00:02', consume: true });
    expect(after.body).toMatchObject({ image: 'linux', kind: 'predefined' });
  });

  it('records a timeline per boot from netboot events; a handoff counts a boot; a DISCOVER after a handoff starts a new boot', async () => {
    const mac = '52:54:00:00:00:03';
    const t = Date.now();
    const ev = (type: string, dt: number, detail?: Record<string, string | number>) => ({ mac, at: t + dt, type, ...(detail ? { detail } : {}) });
    await api('POST', '/boot/events', { items: [ev('discover', 0, { arch: 7 }), ev('offer', 1, { file: 'snponly.efi' }), ev('tftp-done', 500, { bytes: 173792, retransmits: 0 }), ev('script', 900), ev('handoff', 900)] });
    await api('POST', '/boot/events', { items: [ev('discover', 60_000)] });
    const boots = await api('GET', `/boot/boots?mac=${mac}`);
    const items = boots.body.items as Array<{ events: Array<{ type: string }>; handedOff: boolean; kind: string }>;
    expect(items).toHaveLength(2);
    expect(items[1]!.events.map((e) => e.type)).toEqual(['discover', 'offer', 'tftp-done', 'script', 'handoff']);
    expect(items[1]).toMatchObject({ handedOff: true, kind: 'unknown' });
    expect((await api('GET', `/boot/computers/${mac}`)).body).toMatchObject({ kind: 'discovered', boots: 1 });
  });

  it('refuses to delete an image in use, and a site server without the netboot service', async () => {
    await api('POST', '/boot/computers', { macs: ['52:54:00:00:00:04'], image: 'linux' });
    expect((await api('DELETE', '/boot/images/linux')).body).toMatchObject({ error: { code: 'CORE_BOOT_IMAGE_IN_USE' } });
    const { token } = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ task: { url: 'http://x' } }) });
    const enr = await fetch(`${core.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, name: 'tasks-only', services: { task: { url: 'http://x' } } }) });
    const { credential } = (await enr.json()) as { credential: string };
    const r = await fetch(`${core.url}/api/v1/boot/decide`, { method: 'POST', headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' }, body: JSON.stringify({ mac: '52:54:00:00:00:04' }) });
    expect(r.status).toBe(403);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('CORE_BOOT_NOT_A_NETBOOT_SERVER');
  });
});
