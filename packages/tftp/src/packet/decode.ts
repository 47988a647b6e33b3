import { Opcode, type Decoded } from './opcodes.js';
import { decodeRequest, type RequestPacket } from './request.js';
import { decodeData, type DataPacket } from './data.js';
import { decodeAck, type AckPacket } from './ack.js';
import { decodeError, type ErrorPacket } from './error.js';
import { decodeOack, type OackPacket } from './oack.js';

export type Packet = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

/** Largest datagram we decode: DATA at the maximum blksize plus its header. */
export const MAX_DATAGRAM = 65468;

/** Decodes any TFTP datagram by its opcode. Never throws. */
export function decodePacket(buf: Buffer): Decoded<Packet> {
  if (buf.length < 2) return { ok: false, error: 'short' };
  if (buf.length > MAX_DATAGRAM) return { ok: false, error: 'oversized' };
  switch (buf.readUInt16BE(0)) {
    case Opcode.RRQ:
    case Opcode.WRQ:
      return decodeRequest(buf);
    case Opcode.DATA:
      return decodeData(buf);
    case Opcode.ACK:
      return decodeAck(buf);
    case Opcode.ERROR:
      return decodeError(buf);
    case Opcode.OACK:
      return decodeOack(buf);
    default:
      return { ok: false, error: 'bad-opcode' };
  }
}
