import { Opcode, MAX_OPTIONS, type Decoded } from './opcodes.js';
import { findNul, writeCString, cStringLength } from './strings.js';

/*
 * RRQ / WRQ (RFC 1350 §5, options RFC 2347 §2)
 *
 *   2 bytes   string    1 byte  string  1 byte  string  1 byte  string  1 byte
 *  +--------+----------+------+--------+------+--------+------+--------+------+ ...
 *  | 01/02  | filename |  0   |  mode  |  0   |  opt1  |  0   | value1 |  0   |
 *  +--------+----------+------+--------+------+--------+------+--------+------+ ...
 *
 * mode is "netascii", "octet" or "mail" (any case). Options are name/value pairs, names
 * case-insensitive. Quirks tolerated on decode: trailing 0xFF bytes in the filename
 * (some PXE firmware appends one) are stripped; trailing padding after the last complete
 * pair is ignored. Refused: a missing filename or mode terminator, an unknown mode, an
 * empty filename, more than MAX_OPTIONS pairs.
 */

export type TransferMode = 'octet' | 'netascii' | 'mail';

export interface RequestPacket {
  opcode: typeof Opcode.RRQ | typeof Opcode.WRQ;
  filename: string;
  mode: TransferMode;
  /** Option pairs in the order sent; names lower-cased, values as sent. */
  options: Array<[name: string, value: string]>;
}

export function encodeRequest(req: RequestPacket): Buffer {
  let size = 2 + cStringLength(req.filename) + cStringLength(req.mode);
  for (const [k, v] of req.options) size += cStringLength(k) + cStringLength(v);
  const buf = Buffer.allocUnsafe(size);
  buf.writeUInt16BE(req.opcode, 0);
  let off = writeCString(buf, req.filename, 2);
  off = writeCString(buf, req.mode, off);
  for (const [k, v] of req.options) {
    off = writeCString(buf, k, off);
    off = writeCString(buf, v, off);
  }
  return buf;
}

export function decodeRequest(buf: Buffer): Decoded<RequestPacket> {
  if (buf.length < 2) return { ok: false, error: 'short' };
  const opcode = buf.readUInt16BE(0);
  if (opcode !== Opcode.RRQ && opcode !== Opcode.WRQ) return { ok: false, error: 'bad-opcode' };
  const fEnd = findNul(buf, 2);
  if (fEnd < 0) return { ok: false, error: 'unterminated-string' };
  let nameEnd = fEnd;
  while (nameEnd > 2 && buf[nameEnd - 1] === 0xff) nameEnd--;
  if (nameEnd === 2) return { ok: false, error: 'empty-filename' };
  const filename = buf.toString('utf8', 2, nameEnd);
  const mEnd = findNul(buf, fEnd + 1);
  if (mEnd < 0) return { ok: false, error: 'unterminated-string' };
  const modeText = buf.toString('latin1', fEnd + 1, mEnd).toLowerCase();
  if (modeText !== 'octet' && modeText !== 'netascii' && modeText !== 'mail') {
    return { ok: false, error: 'bad-mode' };
  }
  const options: Array<[string, string]> = [];
  let off = mEnd + 1;
  while (off < buf.length) {
    const kEnd = findNul(buf, off);
    if (kEnd < 0) break;
    const vEnd = findNul(buf, kEnd + 1);
    if (vEnd < 0) break;
    if (kEnd === off) {
      off = kEnd + 1; // padding NUL
      continue;
    }
    if (options.length === MAX_OPTIONS) return { ok: false, error: 'too-many-options' };
    options.push([buf.toString('latin1', off, kEnd).toLowerCase(), buf.toString('latin1', kEnd + 1, vEnd)]);
    off = vEnd + 1;
  }
  return { ok: true, packet: { opcode, filename, mode: modeText, options } };
}
