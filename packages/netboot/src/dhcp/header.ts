import { HEADER_LENGTH, MAGIC_COOKIE } from './constants.js';
import type { DhcpDecodeError } from './errors.js';

/*
 * BOOTP/DHCP fixed header (RFC 2131 §2), network byte order:
 *
 *   0      1      2      3
 *  +------+------+------+------+
 *  |  op  | htype| hlen | hops |   0
 *  +------+------+------+------+
 *  |            xid            |   4
 *  +-------------+-------------+
 *  |    secs     |    flags    |   8
 *  +-------------+-------------+
 *  |  ciaddr  (4)  yiaddr (4)  |  12, 16
 *  |  siaddr  (4)  giaddr (4)  |  20, 24
 *  |  chaddr (16)              |  28
 *  |  sname  (64, NUL-padded)  |  44
 *  |  file  (128, NUL-padded)  | 108
 *  +---------------------------+
 *  |  magic cookie 63 82 53 63 | 236
 *  |  options ... 255 (end)    | 240
 *  +---------------------------+
 */

export interface DhcpHeader {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The 16-byte chaddr field as sent (the MAC is its first `hlen` bytes). */
  chaddr: Buffer;
  sname: Buffer;
  file: Buffer;
}

export const ipToString = (b: Buffer, off: number): string => `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;

/** Writes a dotted IPv4 address; anything unparsable is written as 0.0.0.0. */
export function writeIp(b: Buffer, off: number, ip: string): void {
  const parts = ip.split('.');
  for (let i = 0; i < 4; i++) {
    const n = parts.length === 4 ? Number(parts[i]) : 0;
    b[off + i] = Number.isInteger(n) && n >= 0 && n <= 255 ? n : 0;
  }
}

/** Encodes the header and the magic cookie into the first 240 bytes of `out`. */
export function encodeHeader(h: DhcpHeader, out: Buffer): void {
  out.fill(0, 0, HEADER_LENGTH + 4);
  out[0] = h.op;
  out[1] = h.htype;
  out[2] = h.hlen;
  out[3] = h.hops;
  out.writeUInt32BE(h.xid >>> 0, 4);
  out.writeUInt16BE(h.secs & 0xffff, 8);
  out.writeUInt16BE(h.flags & 0xffff, 10);
  writeIp(out, 12, h.ciaddr);
  writeIp(out, 16, h.yiaddr);
  writeIp(out, 20, h.siaddr);
  writeIp(out, 24, h.giaddr);
  h.chaddr.copy(out, 28, 0, Math.min(16, h.chaddr.length));
  h.sname.copy(out, 44, 0, Math.min(64, h.sname.length));
  h.file.copy(out, 108, 0, Math.min(128, h.file.length));
  out.writeUInt32BE(MAGIC_COOKIE, HEADER_LENGTH);
}

export type HeaderResult = { ok: true; header: DhcpHeader } | { ok: false; error: DhcpDecodeError };

/** Decodes the header; never throws. The options area starts at byte 240. */
export function decodeHeader(b: Buffer): HeaderResult {
  if (b.length < HEADER_LENGTH + 4) return { ok: false, error: 'short' };
  if (b.readUInt32BE(HEADER_LENGTH) !== MAGIC_COOKIE) return { ok: false, error: 'bad-cookie' };
  const op = b[0]!;
  if (op !== 1 && op !== 2) return { ok: false, error: 'bad-op' };
  const hlen = b[2]!;
  if (hlen > 16) return { ok: false, error: 'bad-hlen' };
  return {
    ok: true,
    header: {
      op,
      htype: b[1]!,
      hlen,
      hops: b[3]!,
      xid: b.readUInt32BE(4),
      secs: b.readUInt16BE(8),
      flags: b.readUInt16BE(10),
      ciaddr: ipToString(b, 12),
      yiaddr: ipToString(b, 16),
      siaddr: ipToString(b, 20),
      giaddr: ipToString(b, 24),
      chaddr: Buffer.from(b.subarray(28, 44)),
      sname: Buffer.from(b.subarray(44, 108)),
      file: Buffer.from(b.subarray(108, 236)),
    },
  };
}

/** A NUL-padded field as text (up to the first NUL). */
export function fieldText(f: Buffer): string {
  const end = f.indexOf(0);
  return f.subarray(0, end < 0 ? f.length : end).toString('latin1');
}

/** Lower-case colon MAC of `hlen` bytes of chaddr. */
export function macOf(h: Pick<DhcpHeader, 'chaddr' | 'hlen'>): string {
  return [...h.chaddr.subarray(0, h.hlen)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
