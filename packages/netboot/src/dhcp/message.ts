import { HEADER_LENGTH, IP_UDP_OVERHEAD, MIN_MAX_MESSAGE, Opt } from './constants.js';
import type { DhcpDecodeError } from './errors.js';
import { decodeHeader, encodeHeader, type DhcpHeader } from './header.js';
import { decodeOptionArea, encodedOptionLength, joinParts, readU16, writeOption, type DhcpOptions, type OptionEntry } from './options.js';

/*
 * A whole DHCP message: the fixed header (header.ts), the magic cookie, then the options
 * area (options.ts). With option 52 (overload, RFC 2132 §9.3) the `file` (1), `sname` (2)
 * or both (3) fields hold more options, read in the order main, file, sname. Option 52
 * is honoured only in the main area, so overload cannot loop.
 */

export interface DhcpMessage extends DhcpHeader {
  /** Option 53. */
  type: number;
  options: DhcpOptions;
}

export type DecodeResult = { ok: true; message: DhcpMessage } | { ok: false; error: DhcpDecodeError };

/** Decodes a DHCP message. Never throws: hostile bytes give `{ ok: false, error }`. */
export function decodeDhcp(buf: Buffer): DecodeResult {
  const h = decodeHeader(buf);
  if (!h.ok) return h;
  const header = h.header;
  const parts = new Map<number, Buffer[]>();
  const mainError = decodeOptionArea(buf.subarray(HEADER_LENGTH + 4), parts);
  if (mainError) return { ok: false, error: mainError };
  const overload = parts.get(Opt.OVERLOAD);
  if (overload) {
    if (overload.length !== 1 || overload[0]!.length !== 1) return { ok: false, error: 'bad-overload' };
    const o = overload[0]![0]!;
    if (o < 1 || o > 3) return { ok: false, error: 'bad-overload' };
    const areas: Buffer[] = [];
    if (o & 1) areas.push(header.file);
    if (o & 2) areas.push(header.sname);
    for (const area of areas) {
      // The areas were already split off the header; option 52 found inside is ignored.
      const err = decodeOptionArea(area, parts);
      if (err) return { ok: false, error: err };
    }
    parts.delete(Opt.OVERLOAD);
    if (o & 1) header.file = Buffer.alloc(128);
    if (o & 2) header.sname = Buffer.alloc(64);
  }
  const options = joinParts(parts);
  const mt = options.get(Opt.MESSAGE_TYPE);
  if (!mt) return { ok: false, error: 'no-message-type' };
  if (mt.length !== 1) return { ok: false, error: 'bad-option' };
  return { ok: true, message: { ...header, type: mt[0]!, options } };
}

export interface EncodeOptions {
  /**
   * The client's option 57 (largest DHCP message it accepts, IP and UDP headers
   * included); at least 576 is assumed.
   */
  maxMessageSize?: number | undefined;
}

export interface EncodeResult {
  packet: Buffer;
  /** Options that fit nowhere (left out). */
  dropped: number[];
  /** Option 52 value used (0 = none). */
  overload: number;
}

/**
 * Encodes a message: option 53 first, then `options` in order, then end. When the
 * options do not fit in the client's limit, the ones that do not fit go to the `file`
 * and then the `sname` field (option 52) when those fields are empty; what still does
 * not fit is left out and reported in `dropped`.
 */
export function encodeDhcp(header: DhcpHeader, type: number, options: readonly OptionEntry[], enc: EncodeOptions = {}): EncodeResult {
  const limit = Math.max(MIN_MAX_MESSAGE, enc.maxMessageSize ?? MIN_MAX_MESSAGE) - IP_UDP_OVERHEAD;
  const entries: OptionEntry[] = [[Opt.MESSAGE_TYPE, Buffer.from([type])], ...options.filter(([c]) => c !== Opt.MESSAGE_TYPE && c !== Opt.OVERLOAD && c !== Opt.PAD && c !== Opt.END)];
  const mainRoom = limit - HEADER_LENGTH - 4 - 1;
  let total = 0;
  for (const [, v] of entries) total += encodedOptionLength(v);

  const main: OptionEntry[] = [];
  const fileArea: OptionEntry[] = [];
  const snameArea: OptionEntry[] = [];
  const dropped: number[] = [];
  let overload = 0;
  if (total <= mainRoom) main.push(...entries);
  else {
    const fileFree = header.file.every((x) => x === 0);
    const snameFree = header.sname.every((x) => x === 0);
    let mainUsed = 3; // option 52 itself
    let fileUsed = 0;
    let snameUsed = 0;
    for (const e of entries) {
      const n = encodedOptionLength(e[1]);
      if (mainUsed + n <= mainRoom) {
        main.push(e);
        mainUsed += n;
      } else if (fileFree && fileUsed + n <= 127) {
        fileArea.push(e);
        fileUsed += n;
        overload |= 1;
      } else if (snameFree && snameUsed + n <= 63) {
        snameArea.push(e);
        snameUsed += n;
        overload |= 2;
      } else dropped.push(e[0]);
    }
    if (overload) main.unshift([Opt.OVERLOAD, Buffer.from([overload])]);
  }

  let size = HEADER_LENGTH + 4 + 1;
  for (const [, v] of main) size += encodedOptionLength(v);
  const packet = Buffer.alloc(Math.max(size, 300)); // BOOTP minimum 300 bytes; relays and old clients want it
  const h: DhcpHeader = { ...header };
  if (overload & 1) h.file = Buffer.alloc(128);
  if (overload & 2) h.sname = Buffer.alloc(64);
  encodeHeader(h, packet);
  let off = HEADER_LENGTH + 4;
  for (const [c, v] of main) off = writeOption(packet, off, c, v);
  packet[off] = Opt.END;
  const fill = (area: OptionEntry[], at: number, len: number): void => {
    if (area.length === 0) return;
    const buf = Buffer.alloc(len);
    let o = 0;
    for (const [c, v] of area) o = writeOption(buf, o, c, v);
    buf[o] = Opt.END;
    buf.copy(packet, at);
  };
  fill(fileArea, 108, 128);
  fill(snameArea, 44, 64);
  return { packet, dropped, overload };
}

/** The client's option 57, when valid. */
export function maxMessageSize(options: DhcpOptions): number | undefined {
  const v = readU16(options.get(Opt.MAX_MESSAGE_SIZE));
  return v !== undefined && v >= MIN_MAX_MESSAGE ? v : undefined;
}
