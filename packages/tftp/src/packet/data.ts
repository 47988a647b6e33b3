import { Opcode, type Decoded } from './opcodes.js';

/*
 * DATA (RFC 1350 §5)
 *
 *   2 bytes   2 bytes   n bytes (0 <= n <= blksize)
 *  +--------+---------+--------------------+
 *  |   03   | block # |        data        |
 *  +--------+---------+--------------------+
 *
 * A block shorter than the negotiated blksize ends the transfer. Block numbers start at 1
 * and wrap from 65535 to 0 (what iPXE, dnsmasq and atftp do for files past 32 MiB at 512).
 */

export interface DataPacket {
  opcode: typeof Opcode.DATA;
  block: number;
  /** A view into the datagram, not a copy. */
  data: Buffer;
}

export const DATA_HEADER = 4;

export function encodeData(block: number, data: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(DATA_HEADER + data.length);
  writeDataHeader(buf, block);
  buf.set(data, DATA_HEADER);
  return buf;
}

/** Hot path: writes the 4-byte header into a preallocated packet buffer. */
export function writeDataHeader(buf: Buffer, block: number): void {
  buf[0] = 0;
  buf[1] = Opcode.DATA;
  buf[2] = (block >>> 8) & 0xff;
  buf[3] = block & 0xff;
}

export function decodeData(buf: Buffer): Decoded<DataPacket> {
  if (buf.length < DATA_HEADER) return { ok: false, error: 'short' };
  if (buf.readUInt16BE(0) !== Opcode.DATA) return { ok: false, error: 'bad-opcode' };
  return { ok: true, packet: { opcode: Opcode.DATA, block: buf.readUInt16BE(2), data: buf.subarray(DATA_HEADER) } };
}
