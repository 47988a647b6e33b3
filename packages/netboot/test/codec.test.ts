import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  clientArchs,
  clientGuid,
  decodeDhcp,
  decodeHeader,
  decodeOptionArea,
  encodeDhcp,
  encodeOptionArea,
  encodePxeVendorOptions,
  fieldText,
  isIpxe,
  joinParts,
  macOf,
  MessageType,
  Op,
  Opt,
  pxeBootItem,
  pxeVendor,
  text,
} from '../src/index.js';
import { clientPacket } from './helpers.js';

/** Puts option 52 = `v` where the end option was (the encoder never writes a caller's 52). */
function withOverload(p: Buffer, v: number): Buffer {
  let i = 240;
  while (p[i] !== Opt.END) i += p[i] === 0 ? 1 : 2 + p[i + 1]!;
  const out = Buffer.concat([p.subarray(0, i), Buffer.from([Opt.OVERLOAD, 1, v, Opt.END]), Buffer.alloc(8)]);
  return out;
}

const guid = Buffer.concat([Buffer.from([0]), Buffer.from('00112233445566778899aabbccddeeff', 'hex')]);

describe('header codec', () => {
  it('round-trips every BOOTP field', () => {
    const p = clientPacket({ xid: 0xdeadbeef, giaddr: '10.1.2.3', ciaddr: '10.9.8.7', flags: 0x8000, mac: 'aa:bb:cc:dd:ee:ff' });
    const h = decodeHeader(p);
    expect(h.ok).toBe(true);
    if (!h.ok) return;
    expect(h.header).toMatchObject({ op: 1, htype: 1, hlen: 6, xid: 0xdeadbeef, flags: 0x8000, giaddr: '10.1.2.3', ciaddr: '10.9.8.7', yiaddr: '0.0.0.0' });
    expect(macOf(h.header)).toBe('aa:bb:cc:dd:ee:ff');
  });
  it('rejects short packets, a bad magic cookie, a bad op and an oversized hlen', () => {
    const p = clientPacket();
    expect(decodeHeader(p.subarray(0, 239))).toEqual({ ok: false, error: 'short' });
    const bad = Buffer.from(p);
    bad.writeUInt32BE(0x63825364, 236);
    expect(decodeHeader(bad)).toEqual({ ok: false, error: 'bad-cookie' });
    const op = Buffer.from(p);
    op[0] = 3;
    expect(decodeHeader(op)).toEqual({ ok: false, error: 'bad-op' });
    const hl = Buffer.from(p);
    hl[2] = 17;
    expect(decodeHeader(hl)).toEqual({ ok: false, error: 'bad-hlen' });
  });
});

describe('options area codec', () => {
  it('encodes and decodes TLVs with pad and end; splits values over 255 bytes and joins them (RFC 3396)', () => {
    const long = Buffer.alloc(600, 7);
    const area = encodeOptionArea([
      [Opt.HOSTNAME, text('pc1')],
      [Opt.BOOTFILE, long],
    ]);
    const padded = Buffer.concat([Buffer.from([0, 0]), area]);
    const parts = new Map<number, Buffer[]>();
    expect(decodeOptionArea(padded, parts)).toBeUndefined();
    expect(parts.get(Opt.BOOTFILE)).toHaveLength(3);
    const opts = joinParts(parts);
    expect(opts.get(Opt.HOSTNAME)?.toString()).toBe('pc1');
    expect(opts.get(Opt.BOOTFILE)?.equals(long)).toBe(true);
  });
  it('reports a length past the end as option-overflow', () => {
    expect(decodeOptionArea(Buffer.from([12, 10, 1, 2]), new Map())).toBe('option-overflow');
    expect(decodeOptionArea(Buffer.from([12]), new Map())).toBe('option-overflow');
  });
});

describe('message codec', () => {
  it('round-trips a PXE DISCOVER with options 60, 93, 77 and 97', () => {
    const r = decodeDhcp(clientPacket({ vendor: 'PXEClient:Arch:00007:UNDI:003010', arch: 7, ipxe: true, guid }));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.message.type).toBe(MessageType.DISCOVER);
    expect(pxeVendor(r.message.options)).toBe('PXEClient');
    expect(clientArchs(r.message.options)).toEqual([7]);
    expect(isIpxe(r.message.options)).toBe(true);
    expect(clientGuid(r.message.options)).toBe('00112233-4455-6677-8899-aabbccddeeff');
  });
  it('takes the arch from option 60 when 93 is missing, and knows HTTPClient', () => {
    const r = decodeDhcp(clientPacket({ vendor: 'HTTPClient:Arch:00016:UNDI:003001' }));
    expect(r.ok && clientArchs(r.message.options)).toEqual([16]);
    expect(r.ok && pxeVendor(r.message.options)).toBe('HTTPClient');
  });
  it('reads options from file and sname when option 52 says so', () => {
    const p = withOverload(clientPacket(), 3);
    const file = encodeOptionArea([[Opt.HOSTNAME, text('from-file')]]);
    const sname = encodeOptionArea([[Opt.DOMAIN_NAME, text('from.sname')]]);
    file.copy(p, 108);
    sname.copy(p, 44);
    const r = decodeDhcp(p);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.message.options.get(Opt.HOSTNAME)?.toString()).toBe('from-file');
    expect(r.message.options.get(Opt.DOMAIN_NAME)?.toString()).toBe('from.sname');
    expect(r.message.options.has(Opt.OVERLOAD)).toBe(false);
  });
  it('rejects a bad option 52 and a missing option 53', () => {
    expect(decodeDhcp(withOverload(clientPacket(), 9))).toEqual({ ok: false, error: 'bad-overload' });
    const p = clientPacket();
    p[240] = Opt.HOSTNAME; // option 53 becomes option 12
    expect(decodeDhcp(p)).toEqual({ ok: false, error: 'no-message-type' });
  });
  it('moves options that do not fit in 576 bytes into file and sname (option 52)', () => {
    const chaddr = Buffer.alloc(16);
    const big = Array.from({ length: 4 }, (_, i) => [200 + i, Buffer.alloc(80, i)] as const);
    const r = encodeDhcp({ op: Op.REPLY, htype: 1, hlen: 6, hops: 0, xid: 1, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: Buffer.alloc(64), file: Buffer.alloc(128) }, MessageType.OFFER, [[Opt.HOSTNAME, Buffer.alloc(250, 1)], ...big]);
    expect(r.packet.length).toBeLessThanOrEqual(548);
    expect(r.overload).toBeGreaterThan(0);
    const d = decodeDhcp(r.packet);
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    for (const [code] of big) if (!r.dropped.includes(code)) expect(d.message.options.get(code)?.length).toBe(80);
  });
});

describe('PXE vendor options (43)', () => {
  it('encodes discovery control and the boot item, and reads the boot item back', () => {
    const v = encodePxeVendorOptions({ discoveryControl: 8, bootItem: Buffer.from([0x80, 0x00, 0x00, 0x00]) });
    expect([...v]).toEqual([6, 1, 8, 71, 4, 0x80, 0, 0, 0, 255]);
    expect(pxeBootItem(new Map([[Opt.VENDOR_SPECIFIC, v]]))?.equals(Buffer.from([0x80, 0, 0, 0]))).toBe(true);
  });
});

describe('interoperability with the dhcp package (node-dhcp)', () => {
  interface NodeDhcpProtocol {
    parse(b: Buffer): { op: number; xid: number; chaddr: string; options: Record<number, unknown> };
    format(d: Record<string, unknown>): { _data: Buffer; _w: number };
  }
  const require = createRequire(import.meta.url);
  const protocol = require('dhcp/lib/protocol.js') as NodeDhcpProtocol;

  it('node-dhcp parses our messages', () => {
    const p = clientPacket({ mac: '01:02:03:04:05:06', xid: 77, extra: [[Opt.HOSTNAME, text('pc7')]] });
    const parsed = protocol.parse(p);
    expect(parsed).toMatchObject({ op: 1, xid: 77, chaddr: '01-02-03-04-05-06' });
    expect(parsed.options[53]).toBe(MessageType.DISCOVER);
    expect(parsed.options[12]).toBe('pc7');
  });
  it('we decode messages node-dhcp formats', () => {
    const sb = protocol.format({ op: 2, htype: 1, hlen: 6, hops: 0, xid: 99, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '10.0.0.5', siaddr: '10.0.0.1', giaddr: '0.0.0.0', chaddr: '01-02-03-04-05-06', sname: '', file: 'undionly.kpxe', options: { 53: 2, 54: '10.0.0.1', 51: 3600 } });
    const r = decodeDhcp(sb._data.subarray(0, sb._w));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.message).toMatchObject({ op: 2, xid: 99, yiaddr: '10.0.0.5', siaddr: '10.0.0.1', type: MessageType.OFFER });
    expect(fieldText(r.message.file)).toBe('undionly.kpxe');
    expect(r.message.options.get(Opt.LEASE_TIME)?.readUInt32BE(0)).toBe(3600);
  });
});
