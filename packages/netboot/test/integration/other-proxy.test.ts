// A second proxyDHCP on the same segment: the netboot service on 127.0.0.1 watches the
// client port (proxyDhcp.watchOtherServers) while a fake rogue proxyDHCP, also on
// 127.0.0.1, answers the same PXE DISCOVERs. The "client port" is a port of our own
// (loopback stands in for the broadcast domain: both servers' offers are sent to it).
import { createSocket, type Socket } from 'node:dgram';
import { waitFor, type UdpProbe } from '@outpost/testing';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNetboot, decodeDhcp, encodeDhcp, ips, MessageType, Op, Opt, text, type Netboot } from '../../src/index.js';
import { clientPacket, FakeCore, loopbackNetbootConfig, netbootFixture, type NetbootFixture } from '../helpers.js';

const ROGUE = '10.0.0.99';
const CORPORATE = '10.0.0.1';

interface LogLine {
  level: number;
  msg: string;
  server?: string;
  mac?: string;
}

/** An OFFER as another DHCP server would send it: `pxe` adds option 60 PXEClient and a boot file. */
function offerFrom(serverId: string, request: Buffer, pxe: boolean): Buffer {
  const r = decodeDhcp(request);
  if (!r.ok) throw new Error(r.error);
  const m = r.message;
  const file = Buffer.alloc(128);
  if (pxe) file.write('rogue.kpxe', 'latin1');
  const options: Array<readonly [number, Buffer]> = [[Opt.SERVER_ID, ips(serverId)]];
  if (pxe) options.push([Opt.VENDOR_CLASS, text('PXEClient')]);
  else options.push([Opt.SUBNET_MASK, ips('255.255.255.0')], [Opt.LEASE_TIME, Buffer.from([0, 0, 14, 16])]);
  return encodeDhcp(
    { op: Op.REPLY, htype: 1, hlen: 6, hops: 0, xid: m.xid, secs: 0, flags: m.flags, ciaddr: '0.0.0.0', yiaddr: pxe ? '0.0.0.0' : '10.0.0.50', siaddr: pxe ? serverId : '0.0.0.0', giaddr: '0.0.0.0', chaddr: m.chaddr, sname: Buffer.alloc(64), file },
    MessageType.OFFER,
    options,
  ).packet;
}

/** A UDP server on 127.0.0.1 that answers every DHCP request it gets with `reply(request)` sent to the client port. */
async function fakeServer(clientPort: number, reply: (req: Buffer) => Buffer): Promise<{ socket: Socket; port: number; answered: () => number }> {
  const socket = createSocket('udp4');
  let answered = 0;
  socket.on('message', (msg) => {
    answered++;
    socket.send(reply(msg), clientPort, '127.0.0.1');
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, port: socket.address().port, answered: () => answered };
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

let fx: NetbootFixture;
let probe: UdpProbe;
let nb: Netboot | undefined;
let core: FakeCore;
const sockets: Socket[] = [];
let logs: LogLine[];

beforeEach(async () => {
  fx = await netbootFixture('outpost-netboot-other-');
  probe = fx.probe;
  core = new FakeCore();
  logs = [];
});
afterEach(async () => {
  await nb?.stop();
  nb = undefined;
  for (const s of sockets.splice(0)) await new Promise<void>((resolve) => s.close(() => resolve()));
  await fx.close();
});

describe('another proxyDHCP on the segment', () => {
  it('warns once per server, and tells the core, when another proxyDHCP answers the same PXE clients; its own offers and plain DHCP offers are not counted', async () => {
    const clientPort = await freeUdpPort();
    const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
    const n = createNetboot(loopbackNetbootConfig(fx.dir, clientPort, { proxyDhcp: { watchOtherServers: true }, tftp: { enabled: false } }), { backend: core, logger });
    await n.start();
    nb = n;
    expect(n.addresses()).toMatchObject({ dhcp: expect.any(Number) });
    const rogue = await fakeServer(clientPort, (req) => offerFrom(ROGUE, req, true));
    const corporate = await fakeServer(clientPort, (req) => offerFrom(CORPORATE, req, false));
    sockets.push(rogue.socket, corporate.socket);
    const counters = () => (n.stats() as { dhcp: { offers: number; otherProxyOffers: number } }).dhcp;
    const warnings = () => logs.filter((l) => l.level === 40 && l.msg === 'another proxyDHCP server answers the same PXE clients');

    // One PXE client "broadcasts" its DISCOVER: we, the rogue proxy and the corporate DHCP server all answer it.
    const discover = clientPacket({ vendor: 'PXEClient:Arch:00000:UNDI:002001', arch: 0, mac: '52:54:00:0f:00:01', xid: 7 });
    for (const port of [n.addresses().dhcp!, rogue.port, corporate.port]) await probe.send(discover, port);
    await waitFor(() => warnings().length === 1 && counters().offers === 1 && corporate.answered() === 1, { timeoutMs: 5_000, what: 'the warning' });
    expect(warnings()[0]).toMatchObject({ server: ROGUE, mac: '52:54:00:0f:00:01' });
    expect(counters().otherProxyOffers).toBe(1);

    // The same rogue server again (another client): counted, but not warned again within the minute.
    await probe.send(clientPacket({ vendor: 'PXEClient:Arch:00007', arch: 7, mac: '52:54:00:0f:00:02', xid: 8 }), rogue.port);
    await waitFor(() => counters().otherProxyOffers === 2, { timeoutMs: 5_000, what: 'the second rogue offer' });
    await n.flushEvents();
    // Our own offer went to the watched port too (server id = us) and was not taken for another server's.
    await new Promise((r) => setTimeout(r, 100));
    expect(counters().otherProxyOffers).toBe(2);
    expect(warnings()).toHaveLength(1);
    const other = core.received.filter((e) => e.type === 'other-proxy');
    expect(other).toHaveLength(1);
    expect(other[0]).toMatchObject({ mac: '52:54:00:0f:00:01', detail: { server: ROGUE, type: 'offer' } });
    expect(logs.some((l) => l.server === CORPORATE)).toBe(false);
  });

  it('does not watch when watchOtherServers is off', async () => {
    const clientPort = await freeUdpPort();
    const n = createNetboot(loopbackNetbootConfig(fx.dir, clientPort, { tftp: { enabled: false } }), { backend: core });
    await n.start();
    nb = n;
    // Nothing of ours holds the client port: a socket of the test can have it to itself.
    const s = createSocket('udp4');
    sockets.push(s);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind({ port: clientPort, address: '127.0.0.1', exclusive: true }, resolve);
    });
    const rogue = await fakeServer(clientPort, (req) => offerFrom(ROGUE, req, true));
    sockets.push(rogue.socket);
    await probe.send(clientPacket({ vendor: 'PXEClient:Arch:00000', arch: 0 }), rogue.port);
    await waitFor(() => rogue.answered() === 1, { timeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 100));
    expect((n.stats() as { dhcp: { otherProxyOffers: number } }).dhcp.otherProxyOffers).toBe(0);
  });
});
