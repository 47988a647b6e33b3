import { Opt } from './constants.js';
import type { DhcpDecodeError } from './errors.js';

/*
 * Options area (RFC 2132 §2), after the magic cookie and, when option 52 says so, in the
 * `file` and `sname` fields:
 *
 *  +------+------+----------------+
 *  | code | len  | value (len)    |   repeated
 *  +------+------+----------------+
 *  | 0 (pad, no length) | 255 (end, no length) |
 *
 * RFC 3396: an option that appears more than once is one option whose value is the
 * concatenation, in order (main area, then file, then sname). Values longer than 255
 * bytes are split that way when encoding.
 */

/** Options by code, each the concatenated value. */
export type DhcpOptions = Map<number, Buffer>;

/** One option to encode, in the order given. */
export type OptionEntry = readonly [code: number, value: Buffer];

/**
 * Decodes one options area into `parts` (appending per code). Never throws; a length
 * running past the end is `option-overflow`. A missing end option is tolerated.
 */
export function decodeOptionArea(area: Buffer, parts: Map<number, Buffer[]>): DhcpDecodeError | undefined {
  let i = 0;
  // Each iteration consumes at least one byte, so the loop is bounded by area.length.
  while (i < area.length) {
    const code = area[i]!;
    if (code === Opt.PAD) {
      i++;
      continue;
    }
    if (code === Opt.END) return undefined;
    if (i + 1 >= area.length) return 'option-overflow';
    const len = area[i + 1]!;
    const start = i + 2;
    if (start + len > area.length) return 'option-overflow';
    const list = parts.get(code);
    const value = area.subarray(start, start + len);
    if (list) list.push(value);
    else parts.set(code, [value]);
    i = start + len;
  }
  return undefined;
}

/** Joins the parts collected by {@link decodeOptionArea} (copies: the result owns its bytes). */
export function joinParts(parts: Map<number, Buffer[]>): DhcpOptions {
  const out: DhcpOptions = new Map();
  for (const [code, list] of parts) out.set(code, Buffer.concat(list));
  return out;
}

/** The encoded size of one option (split in 255-byte pieces). */
export function encodedOptionLength(value: Buffer): number {
  const pieces = Math.max(1, Math.ceil(value.length / 255));
  return value.length + 2 * pieces;
}

/** Encodes one option into `out` at `off` (split in 255-byte pieces); returns the new offset. */
export function writeOption(out: Buffer, off: number, code: number, value: Buffer): number {
  let pos = 0;
  do {
    const n = Math.min(255, value.length - pos);
    out[off++] = code;
    out[off++] = n;
    value.copy(out, off, pos, pos + n);
    off += n;
    pos += n;
  } while (pos < value.length);
  return off;
}

/** Encodes an options list followed by the end option (no pad). */
export function encodeOptionArea(entries: readonly OptionEntry[]): Buffer {
  let size = 1;
  for (const [, v] of entries) size += encodedOptionLength(v);
  const out = Buffer.alloc(size);
  let off = 0;
  for (const [code, v] of entries) off = writeOption(out, off, code, v);
  out[off] = Opt.END;
  return out;
}

// ------------------------------------------------------------------ small value codecs

export const u8 = (n: number): Buffer => Buffer.from([n & 0xff]);
export const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
};
export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
export const text = (s: string): Buffer => Buffer.from(s, 'latin1');

/** IPv4 addresses as 4 bytes each; an unparsable address becomes 0.0.0.0. */
export function ips(...addresses: string[]): Buffer {
  const b = Buffer.alloc(4 * addresses.length);
  addresses.forEach((a, i) => {
    const p = a.split('.').map(Number);
    for (let k = 0; k < 4; k++) {
      const v = p.length === 4 ? p[k]! : 0;
      b[i * 4 + k] = Number.isInteger(v) && v >= 0 && v <= 255 ? v : 0;
    }
  });
  return b;
}

export const readU8 = (v: Buffer | undefined): number | undefined => (v && v.length === 1 ? v[0] : undefined);
export const readU16 = (v: Buffer | undefined): number | undefined => (v && v.length === 2 ? v.readUInt16BE(0) : undefined);
export const readU32 = (v: Buffer | undefined): number | undefined => (v && v.length === 4 ? v.readUInt32BE(0) : undefined);
export const readIp = (v: Buffer | undefined): string | undefined => (v && v.length === 4 ? `${v[0]}.${v[1]}.${v[2]}.${v[3]}` : undefined);
export const readText = (v: Buffer | undefined): string | undefined => (v ? v.toString('latin1').replace(/\0+$/, '') : undefined);
