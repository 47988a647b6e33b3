// The netboot service on 127.0.0.1 with non-privileged ports (0 = any), a fake core,
// and a UDP probe as the "client port": proxy offers, 4011, non-PXE traffic, floods,
// a slow core, full DHCP leases, and boot sessions that wait instead of failing.
import type { UdpProbe } from '@outpost/testing';
import { tftpGet } from '@outpost/tftp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNetboot, decodeDhcp, fieldText, MessageType, Opt, readIp, type Netboot, type NetbootConfigInput } from '../../src/index.js';
import { clientPacket, FakeCore, loopbackNetbootConfig, netbootFixture, type NetbootFixture } from '../helpers.js';

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
const decode = (b: Buffer) => {
  const r = decodeDhcp(b);
  if (!r.ok) throw new Error(r.error);
  return r.message;
};

beforeEach(async () => {
  fx = await netbootFixture('outpost-netboot-', 200_000);
  probe = fx.probe;
  core = new FakeCore({ kind: 'predefined', image: 'img', script: '#!ipxe\necho hi ${outpost-base}\n', ttlMs: 30_000 });
});
afterEach(async () => {
  await nb?.stop();
  nb = undefined;
  await fx.close();
});

describe('proxyDHCP', () => {
  it('offers a boot file to a PXE DISCOVER and ignores DHCP traffic that is not PXE', async () => {
    const n = await startNetboot();
    await probe.send(clientPacket({ vendor: 'MSFT 5.0' }), n.addresses().dhcp!);
    await probe.send(clientPacket({}), n.addresses().dhcp!);
    await probe.send(clientPacket({ vendor: 'PXEClient:Arch:00000:UNDI:002001', arch: 0, xid: 42 }), n.addresses().dhcp!);
    const reply = decode((await probe.next(2_000)).data);
    expect(reply).toMatchObject({ type: MessageType.OFFER, xid: 42, siaddr: '127.0.0.1', yiaddr: '0.0.0.0' });
    expect(fieldText(reply.file)).toBe('undionly.kpxe');
    expect(await probe.collect(200)).toHaveLength(0);
    const stats = n.stats() as { dhcp: { ignored: Record<string, number>; offers: number } };
    expect(stats.dhcp.ignored['not-pxe']).toBe(2);
    expect(stats.dhcp.offers).toBe(1);
  });

  it('answers a ProxyDHCPREQUEST on the PXE port with an ACK to the sender', async () => {
    const n = await startNetboot();
    await probe.send(clientPacket({ type: MessageType.REQUEST, vendor: 'PXEClient:Arch:00007', arch: 7, ciaddr: '127.0.0.1' }), n.addresses().pxe!);
    const d = await probe.next(2_000);
    const ack = decode(d.data);
    expect(ack.type).toBe(MessageType.ACK);
    expect(d.port).toBe(n.addresses().pxe);
    expect(fieldText(ack.file)).toBe('snponly.efi');
  });

  it('offers fast even when the core is slow (the offer never waits for a decision); the script falls back after the timeout', async () => {
    // Structural, not timed: the core takes 3 s to decide; the offer must come before
    // it has answered anything, and the script must be the fallback, not the decision.
    core.delayMs = 3_000;
    const n = await startNetboot({ decisions: { timeout: 300 } });
    await probe.send(clientPacket({ vendor: 'PXEClient:Arch:00000', arch: 0, ipxe: true, mac: '52:54:00:aa:00:01' }), n.addresses().dhcp!);
    const reply = decode((await probe.next(2_000)).data);
    expect(core.answered).toBe(0);
    const file = fieldText(reply.file);
    expect(file).toMatch(new RegExp(`^${n.url}/boot/52-54-00-aa-00-01\\.ipxe\\?b=[\\w-]{22}$`));
    const res = await fetch(file);
    const text = await res.text();
    expect(core.answered).toBe(0);
    expect(text).toMatch(/^#!ipxe\nset outpost-base http:\/\/127\.0\.0\.1:\d+\n/);
    expect(text).toContain('the core did not answer');
  });

  it('keeps memory and reply rate bounded under a DISCOVER flood from many MACs', async () => {
    const n = await startNetboot({ replies: { perSecond: 200, perMacPerSecond: 2, trackedMacs: 500 } });
    const port = n.addresses().dhcp!;
    const sent = 3_000;
    const t0 = performance.now();
    for (let i = 0; i < sent; i++) {
      const mac = `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      await probe.send(clientPacket({ vendor: 'PXEClient:Arch:00000', arch: 0, mac }), port);
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 2));
    }
    const replies = await probe.collect(500);
    const elapsedS = (performance.now() - t0) / 1000;
    const stats = n.stats() as { dhcp: { received: number; ignored: Record<string, number> }; trackedMacs: number };
    // A loaded machine's kernel may drop some of the flood; most of it must arrive.
    expect(stats.dhcp.received).toBeGreaterThan(1_000);
    // Replies: at most the burst (200) plus the rate (200/s) over the time it took.
    expect(replies.length).toBeLessThanOrEqual(Math.ceil(200 + 200 * elapsedS));
    expect(replies.length).toBeLessThan(stats.dhcp.received / 2);
    expect(stats.dhcp.ignored['rate-global']).toBeGreaterThan(0);
    expect(stats.trackedMacs).toBeLessThanOrEqual(500);
  });
});

describe('full DHCP mode', () => {
  it('leases from the pool (DISCOVER → OFFER, REQUEST → ACK), keeps the lease across a restart, NAKs a foreign address, and frees it on RELEASE', async () => {
    const cfg = { dhcp: { enabled: true, rangeStart: '10.99.0.10', rangeEnd: '10.99.0.11', router: '10.99.0.1', leaseTime: '10m' } };
    let n = await startNetboot(cfg);
    const mac = '52:54:00:dd:00:01';
    await probe.send(clientPacket({ mac }), n.addresses().dhcp!);
    const offer = decode((await probe.next(2_000)).data);
    expect(offer).toMatchObject({ type: MessageType.OFFER, yiaddr: '10.99.0.10' });
    expect(offer.options.get(Opt.LEASE_TIME)?.readUInt32BE(0)).toBe(600);
    await probe.send(clientPacket({ mac, type: MessageType.REQUEST, extra: [[Opt.REQUESTED_IP, Buffer.from([10, 99, 0, 10])], [Opt.SERVER_ID, Buffer.from([127, 0, 0, 1])]] }), n.addresses().dhcp!);
    const ack = decode((await probe.next(2_000)).data);
    expect(ack).toMatchObject({ type: MessageType.ACK, yiaddr: '10.99.0.10' });
    expect(readIp(ack.options.get(Opt.ROUTER))).toBe('10.99.0.1');

    await n.stop();
    n = await startNetboot(cfg);
    // Another client is not given the leased address; the first one gets it back.
    await probe.send(clientPacket({ mac: '52:54:00:dd:00:02' }), n.addresses().dhcp!);
    expect(decode((await probe.next(2_000)).data).yiaddr).toBe('10.99.0.11');
    await probe.send(clientPacket({ mac }), n.addresses().dhcp!);
    expect(decode((await probe.next(2_000)).data).yiaddr).toBe('10.99.0.10');
    await probe.send(clientPacket({ mac: '52:54:00:dd:00:03', type: MessageType.REQUEST, extra: [[Opt.REQUESTED_IP, Buffer.from([10, 99, 0, 10])]] }), n.addresses().dhcp!);
    expect(decode((await probe.next(2_000)).data).type).toBe(MessageType.NAK);
    await probe.send(clientPacket({ mac, type: MessageType.RELEASE, ciaddr: '10.99.0.10' }), n.addresses().dhcp!);
    await new Promise((r) => setTimeout(r, 100));
    expect((n.stats() as { dhcp: { releases: number } }).dhcp.releases).toBe(1);
  });
});

describe('boot sessions', () => {
  it('beyond sessions.max a TFTP request waits for a slot and is then served (answered later, not refused)', async () => {
    const n = await startNetboot({ sessions: { max: 1 }, tftp: { address: '127.0.0.1', port: 0, maxWindowsize: 1 } });
    const port = n.addresses().tftp!;
    const gets = await Promise.all(Array.from({ length: 3 }, () => tftpGet({ host: '127.0.0.1', port, filename: 'undionly.kpxe', blksize: 512, timeoutMs: 2_000, retries: 10 })));
    for (const g of gets) expect(g.bytes).toBe(200_000);
    const s = n.stats() as { sessions: { queued: number; refusedBusy: number } };
    expect(s.sessions.queued).toBeGreaterThan(0);
    expect(s.sessions.refusedBusy).toBe(0);
  });
});
