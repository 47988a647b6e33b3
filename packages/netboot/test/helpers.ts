import { encodeDhcp, encodeClientArchs, MessageType, Op, Opt, text, type OptionEntry } from '../dist/index.js';

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

/** Deterministic PRNG (mulberry32) for the fuzz suite. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
