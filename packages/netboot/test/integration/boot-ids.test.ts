// One boot id ties a boot together: the DHCP offer, the PXE ACK, the TFTP transfer and
// the script fetched over HTTP carry the same id in netboot's log lines and on the
// events sent to the core (which keeps it in its boot record: see the core's tests).
import { Writable } from 'node:stream';
import { waitFor } from '@outpost/testing';
import { tftpGet } from '@outpost/tftp';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNetboot, MessageType, type Netboot } from '../../src/index.js';
import { clientPacket, FakeCore, loopbackNetbootConfig, netbootFixture, replyFile, type NetbootFixture } from '../helpers.js';

let fx: NetbootFixture;
let nb: Netboot | undefined;
beforeEach(async () => {
  fx = await netbootFixture('outpost-netboot-ids-', 20_000);
});
afterEach(async () => {
  await nb?.stop();
  nb = undefined;
  await fx.close();
});

describe('boot ids', () => {
  it('gives one id to a boot across DHCP, TFTP and HTTP, in the log lines and on the events for the core', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const core = new FakeCore();
    const mac = '52:54:00:aa:bb:01';
    const { probe } = fx;
    nb = createNetboot(loopbackNetbootConfig(fx.dir, probe.port), { backend: core, logger: pino({ level: 'info' }, sink) });
    await nb.start();
    // DISCOVER → offer; the PXE request on 4011 comes from 127.0.0.1, which ties the
    // address to the MAC for the TFTP transfer that follows.
    await probe.send(clientPacket({ mac, vendor: 'PXEClient:Arch:00000:UNDI:002001', arch: 0 }), nb.addresses().dhcp!);
    await probe.next(5_000);
    await probe.send(clientPacket({ mac, type: MessageType.REQUEST, vendor: 'PXEClient:Arch:00000', arch: 0, ciaddr: '127.0.0.1' }), nb.addresses().pxe!);
    await probe.next(5_000);
    await tftpGet({ host: '127.0.0.1', port: nb.addresses().tftp!, filename: 'undionly.kpxe' });
    // iPXE asks again and gets its script URL, with the boot token that makes it this boot.
    await probe.send(clientPacket({ mac, vendor: 'PXEClient:Arch:00000:UNDI:002001', arch: 0, ipxe: true }), nb.addresses().dhcp!);
    const script = replyFile((await probe.next(5_000)).data);
    expect((await fetch(script)).status).toBe(200);
    await waitFor(() => core.received.some((e) => e.type === 'handoff') && core.received.some((e) => e.type === 'tftp-done'), { timeoutMs: 10_000, what: 'the events to reach the core' });

    const ids = new Set(core.received.map((e) => e.boot));
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    expect(id).toMatch(/^nb_/);
    expect(core.received.map((e) => e.type)).toEqual(expect.arrayContaining(['discover', 'offer', 'pxe-request', 'pxe-ack', 'tftp-start', 'tftp-done', 'script', 'handoff']));
    const parts = new Set(lines.filter((l) => l.boot === id).map((l) => l.part));
    expect([...parts].sort()).toEqual(['dhcp', 'http', 'tftp']);

    // The next DISCOVER of that machine after the handoff is a new boot.
    await probe.send(clientPacket({ mac, vendor: 'PXEClient:Arch:00000:UNDI:002001', arch: 0 }), nb.addresses().dhcp!);
    await probe.next(5_000);
    // (Offers: the PXE ROM's, iPXE's, and this one.)
    await waitFor(() => core.received.filter((e) => e.type === 'offer').length === 3, { timeoutMs: 10_000, what: 'the next boot\'s offer' });
    const second = core.received.filter((e) => e.type === 'offer')[2]!;
    expect(second.boot).toMatch(/^nb_/);
    expect(second.boot).not.toBe(id);
  });
});
