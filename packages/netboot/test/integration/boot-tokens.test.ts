// The one-use boot token: netboot's DHCP answer to an iPXE client puts it in the script
// URL; only a script request with it consumes the core's decision (a one-shot) and sends
// the script/handoff events. Any other request changes nothing and is counted.
import type { UdpProbe } from '@outpost/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNetboot, MessageType, Opt, UNTOKENED_SCRIPT, type Netboot, type NetbootConfigInput } from '../../src/index.js';
import { clientPacket, FakeCore, loopbackNetbootConfig, netbootFixture, replyFile, type NetbootFixture } from '../helpers.js';

const MAC = '52:54:00:b0:07:01';
const SLUG = MAC.replace(/:/g, '-');
const ONE_SHOT = { kind: 'predefined' as const, computerId: 'pc_1', image: 'wipe', job: 'reimage', script: '#!ipxe\necho one-shot wipe\n', ttlMs: 0 };

let fx: NetbootFixture;
let probe: UdpProbe;
let nb: Netboot | undefined;
let core: FakeCore;

async function startNetboot(over: Partial<NetbootConfigInput> = {}): Promise<Netboot> {
  const n = createNetboot(loopbackNetbootConfig(fx.dir, probe.port, over), { backend: core });
  await n.start();
  nb = n;
  return n;
}

/** An iPXE DISCOVER on the proxyDHCP port; the offer's boot file (the script URL). */
async function ipxeOffer(n: Netboot, mac = MAC): Promise<string> {
  await probe.send(clientPacket({ vendor: 'PXEClient:Arch:00007', arch: 7, ipxe: true, mac }), n.addresses().dhcp!);
  return replyFile((await probe.next(2_000)).data);
}

const scriptEvents = () => core.received.filter((e) => e.type === 'script' || e.type === 'handoff');

beforeEach(async () => {
  fx = await netbootFixture('outpost-netboot-tokens-');
  probe = fx.probe;
  core = new FakeCore(ONE_SHOT);
});
afterEach(async () => {
  await nb?.stop();
  nb = undefined;
  await fx.close();
});

describe('boot tokens in script URLs', () => {
  it('the iPXE answer carries a token (the same in the proxy OFFER and the 4011 ACK); a PXE ROM answer carries none', async () => {
    const n = await startNetboot();
    const url = await ipxeOffer(n);
    expect(url).toMatch(new RegExp(`^${n.url}/boot/${SLUG}\\.ipxe\\?b=[\\w-]{22}$`));
    await probe.send(clientPacket({ type: MessageType.REQUEST, vendor: 'PXEClient:Arch:00007', arch: 7, ipxe: true, mac: MAC, ciaddr: '127.0.0.1' }), n.addresses().pxe!);
    expect(replyFile((await probe.next(2_000)).data)).toBe(url);
    await probe.send(clientPacket({ vendor: 'PXEClient:Arch:00007', arch: 7, mac: '52:54:00:b0:07:02' }), n.addresses().dhcp!);
    expect(replyFile((await probe.next(2_000)).data)).toBe('snponly.efi');
  });

  it('full DHCP mode hands out a token too, in the OFFER and the ACK', async () => {
    const n = await startNetboot({ dhcp: { enabled: true, rangeStart: '10.98.0.10', rangeEnd: '10.98.0.20' } });
    await probe.send(clientPacket({ vendor: 'PXEClient:Arch:00007', arch: 7, ipxe: true, mac: MAC }), n.addresses().dhcp!);
    const offer = replyFile((await probe.next(2_000)).data);
    expect(offer).toMatch(/\?b=[\w-]{22}$/);
    await probe.send(clientPacket({ vendor: 'PXEClient:Arch:00007', arch: 7, ipxe: true, mac: MAC, type: MessageType.REQUEST, extra: [[Opt.REQUESTED_IP, Buffer.from([10, 98, 0, 10])], [Opt.SERVER_ID, Buffer.from([127, 0, 0, 1])]] }), n.addresses().dhcp!);
    expect(replyFile((await probe.next(2_000)).data)).toBe(offer);
  });

  it('the script request with the token consumes the decision once and reports the boot; the token does not serve twice', async () => {
    const n = await startNetboot();
    const url = await ipxeOffer(n);
    expect(await (await fetch(url)).text()).toContain('echo one-shot wipe');
    expect(core.consumes).toEqual([false, true]); // the prefetch on DISCOVER, then the boot
    const again = await (await fetch(url)).text();
    expect(again).toContain(UNTOKENED_SCRIPT.split('\n')[1]);
    expect(core.consumes).toEqual([false, true, false]);
    await n.flushEvents();
    expect(scriptEvents().map((e) => e.type)).toEqual(['script', 'handoff']);
    // The next boot's answer hands out a new token.
    expect(await ipxeOffer(n)).not.toBe(url);
  });

  it('without the token (none, wrong, or another MAC\'s) nothing is consumed or reported, a one-shot is not served, and it is counted', async () => {
    const n = await startNetboot();
    const url = await ipxeOffer(n);
    const other = await ipxeOffer(n, '52:54:00:b0:07:03');
    const token = new URL(url).searchParams.get('b')!;
    const attempts = [
      `${n.url}/boot/${SLUG}.ipxe`,
      `${n.url}/boot/${SLUG}.ipxe?b=${'A'.repeat(22)}`,
      `${n.url}/boot/${SLUG}.ipxe?b=${new URL(other).searchParams.get('b')}`,
      `${n.url}/boot/52-54-00-b0-07-03.ipxe?b=${token}`,
    ];
    for (const a of attempts) {
      const res = await fetch(a);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain('one-shot wipe');
      expect(text).toContain('no valid boot token');
    }
    expect(core.consumes.filter((c) => c)).toHaveLength(0);
    await n.flushEvents();
    expect(scriptEvents()).toHaveLength(0);
    expect((n.stats() as { bootTokens: Record<string, number> }).bootTokens).toMatchObject({ absent: 1, invalid: 3, used: 0 });
    // The real boot still gets its one-shot.
    expect(await (await fetch(url)).text()).toContain('echo one-shot wipe');
    expect(core.consumes.filter((c) => c)).toHaveLength(1);
  });

  it('a decision that is not a one-shot is served without the token too (a menu or predefined image), consuming nothing', async () => {
    core.decision = { kind: 'unknown', script: '#!ipxe\necho menu\n', ttlMs: 30_000 };
    const n = await startNetboot();
    expect(await (await fetch(`${n.url}/boot/${SLUG}.ipxe`)).text()).toContain('echo menu');
    expect(core.consumes).toEqual([false]);
    await n.flushEvents();
    expect(core.received).toHaveLength(0);
  });

  it('beyond untokenedPerSecond, requests without a token do not reach the core; the boot with its token still does', async () => {
    const n = await startNetboot({ decisions: { untokenedPerSecond: 0.1 } });
    const url = await ipxeOffer(n);
    const asked = core.decisions; // the prefetch on DISCOVER
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => fetch(`${n.url}/boot/02-00-00-00-00-${i.toString(16).padStart(2, '0')}.ipxe`).then((r) => r.text())));
    expect(answers.every((t) => t.includes('no valid boot token'))).toBe(true);
    expect(core.decisions - asked).toBe(1);
    expect((n.stats() as { decisions: { untokenedLimited: number } }).decisions.untokenedLimited).toBe(19);
    expect(await (await fetch(url)).text()).toContain('echo one-shot wipe');
    expect(core.consumes.at(-1)).toBe(true);
  });
});
