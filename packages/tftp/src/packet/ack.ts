import { Opcode, type Decoded } from './opcodes.js';

/*
 * ACK (RFC 1350 §5)
 *
 *   2 bytes   2 bytes
 *  +--------+---------+
 *  |   04   | block # |
 *  +--------+---------+
 *
 * ACK 0 answers an OACK (RFC 2347) or a WRQ. With a window (RFC 7440) one ACK
 * acknowledges every block up to and including its number. Trailing bytes are tolerated.
 */

export interface AckPacket {
  opcode: typeof Opcode.ACK;
  block: number;
}

export function encodeAck(block: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  writeAck(buf, block);
  return buf;
}

/** Hot path: rewrites a preallocated 4-byte ACK. */
export function writeAck(buf: Buffer, block: number): void {
  buf[0] = 0;
  buf[1] = Opcode.ACK;
  buf[2] = (block >>> 8) & 0xff;
  buf[3] = block & 0xff;
}

export function decodeAck(buf: Buffer): Decoded<AckPacket> {
  if (buf.length < 4) return { ok: false, error: 'short' };
  if (buf.readUInt16BE(0) !== Opcode.ACK) return { ok: false, error: 'bad-opcode' };
  return { ok: true, packet: { opcode: Opcode.ACK, block: buf.readUInt16BE(2) } };
}

/** Hot path: the block number of an ACK datagram, or -1 if it is not one. */
export function ackBlock(buf: Buffer): number {
  return buf.length >= 4 && buf[0] === 0 && buf[1] === Opcode.ACK ? (buf[2]! << 8) | buf[3]! : -1;
}
