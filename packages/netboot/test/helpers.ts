import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openUdpProbe, removeDir, tempDir, type UdpProbe } from '@outpost/testing';
import { decodeDhcp, encodeDhcp, encodeClientArchs, fieldText, MessageType, Op, Opt, text, type BootBackend, type BootDecision, type BootEventOut, type NetbootConfigInput, type OptionEntry } from '../src/index.js';

/** A client request as firmware sends it. */
export function clientPacket(o: { mac?: string; type?: number; vendor?: string; arch?: number; ipxe?: boolean; guid?: Buffer; xid?: number; giaddr?: string; ciaddr?: string; extra?: OptionEntry[]; flags?: number } = {}): Buffer {
  const mac = Buffer.from((o.mac ?? '52:54:00:12:34:56').split(':').map((h) => parseInt(h, 16)));
  const chaddr = Buffer.alloc(16);
  mac.copy(chaddr);
  const opts: OptionEntry[] = [];
  if (o.vendor !== undefined) opts.push([Opt.VENDOR_CLASS, text(o.vendor)]);
  if (o.arch !== undefined) opts.push([Opt.CLIENT_ARCH, encodeClientArchs([o.arch])]);
  if (o.ipxe) opts.push([Opt.USER_CLASS, text('iPXE')]);
  if (o.guid) opts.push([Opt.CLIENT_GUID, o.guid]);
  opts.push(...(o.extra ?? []));
  return encodeDhcp(
    { op: Op.REQUEST, htype: 1, hlen: 6, hops: 0, xid: o.xid ?? 0x12345678, secs: 0, flags: o.flags ?? 0x8000, ciaddr: o.ciaddr ?? '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: o.giaddr ?? '0.0.0.0', chaddr, sname: Buffer.alloc(64), file: Buffer.alloc(128) },
    o.type ?? MessageType.DISCOVER,
    opts,
    { maxMessageSize: 1500 },
  ).packet;
}

/** The boot file of a reply (for iPXE: its script URL, boot token included). */
export function replyFile(data: Buffer): string {
  const r = decodeDhcp(data);
  if (!r.ok) throw new Error(`the reply did not decode: ${r.error}`);
  return fieldText(r.message.file);
}

/**
 * The core's side of the boot calls, in memory (the core's HTTP API is tested in the
 * core and end to end): answers every machine with `decision`, after `delayMs`.
 */
export class FakeCore implements BootBackend {
  delayMs = 0;
  /** Events sent to the core (a field named `events` would shadow the method). */
  received: BootEventOut[] = [];
  decisions = 0;
  /** Decisions answered so far (a slow core has been asked but not yet answered). */
  answered = 0;

  constructor(public decision: Omit<BootDecision, 'mac'> = { kind: 'unknown', script: '#!ipxe\nexit\n', ttlMs: 30_000 }) {}

  /** The `consume` flag of each decision asked for, in order. */
  consumes: boolean[] = [];

  async decide(input: { mac: string; consume: boolean }): Promise<BootDecision> {
    this.decisions++;
    this.consumes.push(input.consume);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    this.answered++;
    return { mac: input.mac, ...this.decision };
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

/** A temp dir with an empty `loaders/` (or one holding an `undionly.kpxe` of `loaderBytes`), and a UDP probe to stand for the clients. */
export interface NetbootFixture {
  dir: string;
  probe: UdpProbe;
  close(): Promise<void>;
}

export async function netbootFixture(prefix: string, loaderBytes?: number): Promise<NetbootFixture> {
  const dir = await tempDir(prefix);
  await mkdir(join(dir, 'loaders'));
  if (loaderBytes !== undefined) await writeFile(join(dir, 'loaders', 'undionly.kpxe'), Buffer.alloc(loaderBytes, 1));
  const probe = await openUdpProbe();
  return {
    dir,
    probe,
    close: async () => {
      await probe.close();
      await removeDir(dir);
    },
  };
}

/**
 * Netboot on 127.0.0.1, every port 0, its offers sent to `clientPort` (loopback stands
 * for the broadcast domain), data and loaders under `dir`, events reported every 50 ms.
 * `over` replaces top-level keys, except `proxyDhcp`, which it amends.
 */
export function loopbackNetbootConfig(dir: string, clientPort: number, over: Partial<NetbootConfigInput> = {}): NetbootConfigInput {
  return {
    coreUrl: 'http://127.0.0.1:1',
    dataDir: join(dir, 'nb'),
    address: '127.0.0.1',
    serverAddress: '127.0.0.1',
    tftp: { address: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    loaders: { dir: join(dir, 'loaders') },
    reportInterval: 50,
    ...over,
    proxyDhcp: { port: 0, pxePort: 0, clientPort, broadcastAddress: '127.0.0.1', relayPort: clientPort, watchOtherServers: false, ...over.proxyDhcp },
  };
}
