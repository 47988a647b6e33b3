// One boot id ties a boot together: the DHCP offer, the PXE ACK, the TFTP transfer and
// the script fetched over HTTP carry the same id in netboot's log lines and on the
// events sent to the core (which keeps it in its boot record: see the core's tests).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { openUdpProbe, removeDir, tempDir, waitFor, type UdpProbe } from '@outpost/testing';
import { tftpGet } from '@outpost/tftp';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNetboot, MessageType, type BootBackend, type BootDecision, type BootEventOut, type Netboot } from '../../dist/index.js';
import { clientPacket } from '../helpers.js';

/** The core's side of the boot calls (its HTTP API is tested in the core and end to end). */
class CoreStandIn implements BootBackend {
  received: BootEventOut[] = [];
  async decide(input: { mac: string }): Promise<BootDecision> {
    return { mac: input.mac, kind: 'unknown', script: '#!ipxe\nexit\n', ttlMs: 30_000 };
  }
  async image(name: string) {
    return { name, package: 'p', packageInfo: null };
  }
  fileUrl() {
    return { url: 'http://127.0.0.1:1/none', bearer: '' };
  }
  async events(items: BootEventOut[]): Promise<void> {
    this.received.push(...items);
  }
}

let dir: string;
let probe: UdpProbe;
let nb: Netboot | undefined;
beforeEach(async () => {
  dir = await tempDir('outpost-netboot-ids-');
  await mkdir(join(dir, 'loaders'));
  await writeFile(join(dir, 'loaders', 'undionly.kpxe'), Buffer.alloc(20_000, 1));
  probe = await openUdpProbe();
});
afterEach(async () => {
  await nb?.stop();
  nb = undefined;
  await probe.close();
  await removeDir(dir);
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
    const core = new CoreStandIn();
    const mac = '52:54:00:aa:bb:01';
    nb = createNetboot(
      {
        coreUrl: 'http://127.0.0.1:1',
        dataDir: join(dir, 'nb'),
        address: '127.0.0.1',
        serverAddress: '127.0.0.1',
        proxyDhcp: { port: 0, pxePort: 0, clientPort: probe.port, broadcastAddress: '127.0.0.1', relayPort: probe.port, watchOtherServers: false },
        tftp: { address: '127.0.0.1', port: 0 },
        http: { host: '127.0.0.1', port: 0 },
        loaders: { dir: join(dir, 'loaders') },
        reportInterval: 50,
      },
      { backend: core, logger: pino({ level: 'info' }, sink) },
    );
    await nb.start();
    // DISCOVER → offer; the PXE request on 4011 comes from 127.0.0.1, which ties the
    // address to the MAC for the TFTP transfer that follows.
    await probe.send(clientPacket({ mac, vendor: 'PXEClient:Arch:00000:UNDI:002001', arch: 0 }), nb.addresses().dhcp!);
    await probe.next(5_000);
    await probe.send(clientPacket({ mac, type: MessageType.REQUEST, vendor: 'PXEClient:Arch:00000', arch: 0, ciaddr: '127.0.0.1' }), nb.addresses().pxe!);
    await probe.next(5_000);
    await tftpGet({ host: '127.0.0.1', port: nb.addresses().tftp!, filename: 'undionly.kpxe' });
    expect((await fetch(`${nb.url}/boot/${mac.replace(/:/g, '-')}.ipxe`)).status).toBe(200);
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
    await waitFor(() => core.received.filter((e) => e.type === 'offer').length === 2, { timeoutMs: 10_000, what: 'the second offer' });
    const second = core.received.filter((e) => e.type === 'offer')[1]!;
    expect(second.boot).toMatch(/^nb_/);
    expect(second.boot).not.toBe(id);
  });
});
