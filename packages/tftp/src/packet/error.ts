import { Opcode, type Decoded } from './opcodes.js';
import { findNul, writeCString, cStringLength } from './strings.js';

/*
 * ERROR (RFC 1350 §5)
 *
 *   2 bytes   2 bytes     string    1 byte
 *  +--------+-----------+----------+------+
 *  |   05   | ErrorCode |  ErrMsg  |  0   |
 *  +--------+-----------+----------+------+
 *
 * Codes: 0 not defined (see message), 1 file not found, 2 access violation, 3 disk full
 * or allocation exceeded, 4 illegal operation, 5 unknown TID, 6 file exists, 7 no such
 * user, 8 option negotiation refused (RFC 2347). Decoding is lenient: a message without
 * its NUL runs to the end of the datagram, since an ERROR is never answered anyway.
 */

export interface ErrorPacket {
  opcode: typeof Opcode.ERROR;
  code: number;
  message: string;
}

/** Longest message we put on the wire (keeps an ERROR inside one 512-byte packet). */
const MAX_MESSAGE = 255;

export function encodeError(code: number, message: string): Buffer {
  const msg = message.length > MAX_MESSAGE ? message.slice(0, MAX_MESSAGE) : message;
  const buf = Buffer.allocUnsafe(4 + cStringLength(msg));
  buf.writeUInt16BE(Opcode.ERROR, 0);
  buf.writeUInt16BE(code & 0xffff, 2);
  writeCString(buf, msg, 4);
  return buf;
}

export function decodeError(buf: Buffer): Decoded<ErrorPacket> {
  if (buf.length < 4) return { ok: false, error: 'short' };
  if (buf.readUInt16BE(0) !== Opcode.ERROR) return { ok: false, error: 'bad-opcode' };
  const end = findNul(buf, 4);
  const message = buf.toString('utf8', 4, end < 0 ? Math.min(buf.length, 4 + 1024) : Math.min(end, 4 + 1024));
  return { ok: true, packet: { opcode: Opcode.ERROR, code: buf.readUInt16BE(2), message } };
}
