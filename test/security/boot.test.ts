// Boot control is never taken from what an agent says about itself (issue #14, attacks 4
// and 6). A real core and a real netboot service (proxyDHCP and HTTP boot on loopback, a
// UDP probe standing for the broadcast domain). Each test runs the attack and asserts
// that its effect did not happen:
//  (a) an agent that PATCHes its MACs to a predefined victim's and asks for reboot to
//      automation (a wipe image plus a job) is refused, and the victim is untouched;
//  (b) a plain fetch of the victim's boot script does not consume its one-shot: the real
//      boot (the script URL from netboot's own DHCP answer) still gets it;
//  (c) script fetches for random MACs record nothing, and boot events for more unknown
//      MACs than core.boot.maxDiscovered stop at the bound.
import { join } from 'node:path';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { createNetboot, type Netboot } from '@outpost/netboot';
import { grantFor, openUdpProbe, removeDir, tempDir, waitFor, type UdpProbe } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, adminOk, apiRequest } from '../fixtures/e2e.js';
import { ipxeDiscover, ipxeScriptUrl, loopbackDhcp } from '../fixtures/netboot-dhcp.js';

const WAIT = 60_000;
const MAX_DISCOVERED = 40;
const VICTIM = '52:54:00:5e:c0:01';
const ATTACKER = '52:54:00:5e:c0:99';

let dir: string;
let core: Core;
let nb: Netboot;
let probe: UdpProbe;

interface Computer {
  id: string;
  kind: string;
  agentId?: string;
  once?: { image: string; job?: string };
  pendingJob?: { job: string };
}

/** The site-server enrollment token for the netboot service (the one place this file makes one). */
async function netbootToken(c: Core): Promise<string> {
  return (await c.createEnrollmentToken({ for: 'site-server', grant: grantFor({ netboot: {} }) })).token;
}

async function enrollAgent(name: string, macs: string[]): Promise<{ id: string; credential: string }> {
  const { token } = await core.createEnrollmentToken({ for: 'agent' });
  const r = await apiRequest<{ id: string; credential: string }>(core.url, '', 'POST', '/enroll', { token, name, macs });
  expect(r.status).toBe(201);
  return r.body;
}

const victim = async (): Promise<Computer> => adminOk<Computer>(core, 'GET', `/boot/computers/${VICTIM}`);
const bootsOf = async (mac: string): Promise<unknown[]> => (await adminOk<{ items: unknown[] }>(core, 'GET', `/boot/boots?mac=${mac}&limit=1000`)).items;

beforeAll(async () => {
  dir = await tempDir('outpost-security-boot-');
  core = createCore(validateConfig(coreConfigSchema, { dataDir: join(dir, 'core'), http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, boot: { maxDiscovered: MAX_DISCOVERED } }, { file: 'security' }), { logger: silentLogger() });
  await core.start();
  probe = await openUdpProbe();
  nb = createNetboot(
    { coreUrl: core.url, dataDir: join(dir, 'netboot'), enrollToken: await netbootToken(core), ...loopbackDhcp(probe), tftp: { enabled: false }, http: { host: '127.0.0.1', port: 0 }, reportInterval: '100ms' },
    { logger: silentLogger() },
  );
  await nb.start();
  await adminOk(core, 'POST', '/tasks', { name: 'wipe-disk', kind: 'command', program: 'echo', args: ['wiped'] });
  await adminOk(core, 'POST', '/jobs', { name: 'wipe', steps: [{ task: 'wipe-disk' }] });
  await adminOk(core, 'POST', '/boot/images', { name: 'installer', package: 'installer-pkg', kernel: 'vmlinuz' });
  await adminOk(core, 'POST', '/boot/images', { name: 'wiper', package: 'wiper-pkg', script: 'wipe.ipxe' });
}, WAIT);

afterAll(async () => {
  await nb?.stop().catch(() => undefined);
  await probe?.close();
  await core?.stop().catch(() => undefined);
  await removeDir(dir);
}, WAIT);

describe('boot control attacks', () => {
  it('(a) an agent that claims a victim computer\'s MAC cannot ask for its reboot to automation, nor is it bound by enrolling with it', async () => {
    await adminOk(core, 'POST', '/boot/computers', { macs: [VICTIM], image: 'installer', name: 'victim' });
    const owner = await enrollAgent('victim-os', ['52:54:00:5e:c0:02']);
    await adminOk(core, 'PUT', `/boot/computers/${VICTIM}/agent`, { agent: owner.id });
    await adminOk(core, 'POST', '/boot/automation', { computer: VICTIM, image: 'installer', job: 'wipe' });
    const before = await victim();
    expect(before).toMatchObject({ agentId: owner.id, once: { image: 'installer', job: 'wipe' } });

    const attacker = await enrollAgent('attacker', [ATTACKER]);
    const patched = await apiRequest(core.url, attacker.credential, 'PATCH', `/agents/${attacker.id}`, { macs: [VICTIM] });
    expect(patched.status).toBe(200); // reporting MACs is allowed: they are data
    const asked = await apiRequest<{ error: { code: string } }>(core.url, attacker.credential, 'POST', '/boot/automation', { image: 'wiper', job: 'wipe' });
    expect(asked.status).toBe(409);
    expect(asked.body.error.code).toBe('CORE_BOOT_NOT_BOUND');
    for (const body of [{ mac: VICTIM, image: 'wiper' }, { computer: before.id, image: 'wiper' }, { agent: owner.id, image: 'wiper' }]) {
      expect((await apiRequest(core.url, attacker.credential, 'POST', '/boot/automation', body)).status).toBe(403);
    }
    // A fresh agent enrolling with the victim's MAC (no boot of it was observed) is not bound either.
    const handled = async () => {
      const { boot } = await adminOk<{ boot: { bindingsRefused: number; agentsBound: number } }>(core, 'GET', '/stats');
      return boot.bindingsRefused + boot.agentsBound;
    };
    const handledBefore = await handled();
    await enrollAgent('attacker-2', [VICTIM]);
    await waitFor(async () => (await handled()) > handledBefore, { timeoutMs: WAIT, what: 'the enrollment handled' });

    const after = await victim();
    expect(after).toEqual(before);
    expect(after.agentId).toBe(owner.id);
    expect(after.once).toEqual(before.once);
    expect(after.pendingJob).toBeUndefined();
    expect((await adminOk<{ items: Computer[] }>(core, 'GET', '/boot/computers')).items.filter((c) => c.agentId === attacker.id)).toHaveLength(0);
  }, WAIT);

  it('(b) a fetch of the victim\'s boot script without its boot token leaves its one-shot pending and its real boot unchanged', async () => {
    const slug = VICTIM.replace(/:/g, '-');
    const first = await victim();
    expect(first.once).toMatchObject({ image: 'installer', job: 'wipe' });
    for (const q of ['', '?b=', `?b=${'A'.repeat(22)}`, '?b=not-a-token']) {
      const res = await fetch(`${nb.url}/boot/${slug}.ipxe${q}`);
      expect(res.status).toBe(200);
      expect(await res.text()).not.toContain('images/installer/vmlinuz');
    }
    await nb.flushEvents();
    expect(await victim()).toEqual(first);
    expect(await bootsOf(VICTIM)).toHaveLength(0);

    // The machine's real boot: its iPXE gets the URL from netboot's DHCP answer.
    const url = await ipxeScriptUrl(nb, probe, VICTIM);
    const script = await (await fetch(url)).text();
    expect(script).toContain('kernel ${outpost-base}/images/installer/vmlinuz');
    expect(script).toContain('set outpost-job wipe');
    await nb.flushEvents();
    const used = await victim();
    expect(used.once).toBeUndefined();
    expect(used.pendingJob).toMatchObject({ job: 'wipe' });
    // The token served once: fetched again, it changes nothing more.
    await fetch(url);
    await nb.flushEvents();
    expect(await victim()).toEqual(used);
    await waitFor(async () => (await bootsOf(VICTIM)).length === 1, { timeoutMs: WAIT, what: 'the real boot recorded' });
  }, WAIT);

  it('(c) script fetches for 500 random MACs record nothing; boot events for more unknown MACs than maxDiscovered stop at the bound', async () => {
    const computers = async () => (await adminOk<{ items: Computer[] }>(core, 'GET', '/boot/computers')).items.length;
    const countBefore = await computers();
    const bootsBefore = (await adminOk<{ items: unknown[] }>(core, 'GET', '/boot/boots?limit=10000')).items.length;
    const rnd = () => Array.from({ length: 6 }, (_, i) => (i === 0 ? 0x02 : Math.floor(Math.random() * 256)).toString(16).padStart(2, '0')).join('-');
    for (let batch = 0; batch < 10; batch++) {
      const answers = await Promise.all(Array.from({ length: 50 }, () => fetch(`${nb.url}/boot/${rnd()}.ipxe`).then((r) => r.status)));
      expect(answers.every((s) => s === 200)).toBe(true);
    }
    await nb.flushEvents();
    expect(await computers()).toBe(countBefore);
    expect((await adminOk<{ items: unknown[] }>(core, 'GET', '/boot/boots?limit=10000')).items).toHaveLength(bootsBefore);

    // DISCOVERs from twice the bound of unknown MACs: netboot reports them all.
    const room = MAX_DISCOVERED - (await adminOk<{ items: Computer[] }>(core, 'GET', '/boot/computers')).items.filter((c) => c.kind === 'discovered').length;
    for (let i = 0; i < 2 * MAX_DISCOVERED; i++) {
      await probe.send(ipxeDiscover(`02:00:5e:c0:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`), nb.addresses().dhcp!);
    }
    await probe.collect(500);
    // Every event netboot queued has reached the core (its DISCOVER and offer per MAC at least).
    await waitFor(async () => {
      await nb.flushEvents();
      const { events } = nb.stats() as { events: { queued: number; sent: number } };
      return events.queued >= 4 * MAX_DISCOVERED && events.sent === events.queued;
    }, { timeoutMs: WAIT, what: 'the DISCOVER events sent to the core' });
    expect((await adminOk<{ boot: { eventsRefused: number } }>(core, 'GET', '/stats')).boot.eventsRefused).toBeGreaterThanOrEqual(MAX_DISCOVERED);
    const all = (await adminOk<{ items: Array<Computer & { macs: string[] }> }>(core, 'GET', '/boot/computers')).items;
    expect(all.filter((c) => c.kind === 'discovered')).toHaveLength(MAX_DISCOVERED);
    expect(all.filter((c) => c.macs[0]!.startsWith('02:00:5e:c0:'))).toHaveLength(room);
    const boots = (await adminOk<{ items: Array<{ mac: string }> }>(core, 'GET', '/boot/boots?limit=10000')).items;
    expect(new Set(boots.filter((b) => b.mac.startsWith('02:00:5e:c0:')).map((b) => b.mac)).size).toBe(room);
    expect((await adminApi(core, 'GET', '/stats')).status).toBe(200);
  }, WAIT);
});
