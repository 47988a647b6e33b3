import { Opcode, MAX_OPTIONS, type Decoded } from './opcodes.js';
import { findNul, writeCString, cStringLength } from './strings.js';

/*
 * OACK (RFC 2347 §3)
 *
 *   2 bytes  string  1 byte  string  1 byte  string  1 byte  string  1 byte
 *  +-------+-------+------+--------+------+-------+------+--------+------+ ...
 *  |  06   |  opt1 |  0   | value1 |  0   |  opt2 |  0   | value2 |  0   |
 *  +-------+-------+------+--------+------+-------+------+--------+------+ ...
 *
 * Carries only options the client asked for and the server accepted, with the values
 * the server chose. An empty OACK is never sent (the server answers with DATA/ACK then).
 */

export interface OackPacket {
  opcode: typeof Opcode.OACK;
  options: Array<[name: string, value: string]>;
}

export function encodeOack(options: ReadonlyArray<readonly [string, string]>): Buffer {
  let size = 2;
  for (const [k, v] of options) size += cStringLength(k) + cStringLength(v);
  const buf = Buffer.allocUnsafe(size);
  buf.writeUInt16BE(Opcode.OACK, 0);
  let off = 2;
  for (const [k, v] of options) {
    off = writeCString(buf, k, off);
    off = writeCString(buf, v, off);
  }
  return buf;
}

export function decodeOack(buf: Buffer): Decoded<OackPacket> {
  if (buf.length < 2) return { ok: false, error: 'short' };
  if (buf.readUInt16BE(0) !== Opcode.OACK) return { ok: false, error: 'bad-opcode' };
  const options: Array<[string, string]> = [];
  let off = 2;
  while (off < buf.length) {
    const kEnd = findNul(buf, off);
    if (kEnd < 0) return { ok: false, error: 'unterminated-string' };
    const vEnd = findNul(buf, kEnd + 1);
    if (vEnd < 0) return { ok: false, error: 'unterminated-string' };
    if (options.length === MAX_OPTIONS) return { ok: false, error: 'too-many-options' };
    options.push([buf.toString('latin1', off, kEnd).toLowerCase(), buf.toString('latin1', kEnd + 1, vEnd)]);
    off = vEnd + 1;
  }
  return { ok: true, packet: { opcode: Opcode.OACK, options } };
}
