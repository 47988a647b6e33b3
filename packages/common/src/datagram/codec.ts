import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Authenticated UDP datagrams: tickles ("you have something to fetch") and heartbeats
 * ("I am alive"). They never carry work, only a hint; the receiver fetches over HTTP.
 *
 * Wire layout (big-endian), at most {@link MAX_DATAGRAM} bytes:
 *
 * ```
 *  offset  size  field
 *  0       2     magic 0x4F 0x50 ("OP")
 *  2       1     version = 1
 *  3       1     type: 1 tickle, 2 heartbeat, 3 heartbeat-ack
 *  4       2     flags (per type; tickle: 0x1 work, 0x2 config, 0x4 packages)
 *  6       8     timestamp, ms since the Unix epoch (uint64)
 *  14      4     sequence (uint32), strictly increasing with the timestamp per sender
 *  18      1     sender id length S, 1..64
 *  19      S     sender id, printable ASCII
 *  19+S    2     payload length P, 0..256
 *  21+S    P     payload (opaque to the codec)
 *  21+S+P  32    HMAC-SHA256 of bytes 0 .. 21+S+P-1 with the recipient's (tickle) or
 *                sender's (heartbeat) datagram key
 * ```
 */
export const DATAGRAM_MAGIC = 0x4f50;
export const DATAGRAM_VERSION = 1;
export const MAX_DATAGRAM = 512;
export const MAX_SENDER_ID = 64;
export const MAX_PAYLOAD = 256;
const HEADER = 19;
const MAC = 32;

export const DatagramType = { TICKLE: 1, HEARTBEAT: 2, HEARTBEAT_ACK: 3 } as const;
export type DatagramType = (typeof DatagramType)[keyof typeof DatagramType];
export const TickleFlags = { WORK: 0x1, CONFIG: 0x2, PACKAGES: 0x4 } as const;

export interface Datagram {
  type: DatagramType;
  flags: number;
  timestamp: number;
  seq: number;
  sender: string;
  payload: Buffer;
}

/** A structurally valid datagram whose MAC is not yet checked. */
export interface DecodedDatagram extends Datagram {
  /** The bytes the MAC covers. */
  signed: Buffer;
  mac: Buffer;
}

export type DatagramDecodeError =
  | 'too-short'
  | 'too-long'
  | 'bad-magic'
  | 'bad-version'
  | 'bad-type'
  | 'bad-sender'
  | 'bad-length';

export type DecodeResult = { ok: true; value: DecodedDatagram } | { ok: false; error: DatagramDecodeError };

const SENDER_RE = /^[\x21-\x7e]+$/;

export function encodeDatagram(d: Datagram, key: Buffer): Buffer {
  const sender = Buffer.from(d.sender, 'latin1');
  if (sender.length < 1 || sender.length > MAX_SENDER_ID || !SENDER_RE.test(d.sender)) {
    throw new RangeError(`datagram sender id must be 1..${MAX_SENDER_ID} printable ASCII characters`);
  }
  if (d.payload.length > MAX_PAYLOAD) throw new RangeError(`datagram payload must be at most ${MAX_PAYLOAD} bytes`);
  const bodyLen = HEADER + sender.length + 2 + d.payload.length;
  const buf = Buffer.allocUnsafe(bodyLen + MAC);
  buf.writeUInt16BE(DATAGRAM_MAGIC, 0);
  buf.writeUInt8(DATAGRAM_VERSION, 2);
  buf.writeUInt8(d.type, 3);
  buf.writeUInt16BE(d.flags & 0xffff, 4);
  buf.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(d.timestamp))), 6);
  buf.writeUInt32BE(d.seq >>> 0, 14);
  buf.writeUInt8(sender.length, 18);
  sender.copy(buf, HEADER);
  buf.writeUInt16BE(d.payload.length, HEADER + sender.length);
  d.payload.copy(buf, HEADER + sender.length + 2);
  createHmac('sha256', key).update(buf.subarray(0, bodyLen)).digest().copy(buf, bodyLen);
  return buf;
}

/** Structural decode. Never throws: hostile bytes give `{ ok: false, error }`. */
export function decodeDatagram(buf: Buffer): DecodeResult {
  if (buf.length > MAX_DATAGRAM) return { ok: false, error: 'too-long' };
  if (buf.length < HEADER + 1 + 2 + MAC) return { ok: false, error: 'too-short' };
  if (buf.readUInt16BE(0) !== DATAGRAM_MAGIC) return { ok: false, error: 'bad-magic' };
  if (buf.readUInt8(2) !== DATAGRAM_VERSION) return { ok: false, error: 'bad-version' };
  const type = buf.readUInt8(3);
  if (type < 1 || type > 3) return { ok: false, error: 'bad-type' };
  const senderLen = buf.readUInt8(18);
  if (senderLen < 1 || senderLen > MAX_SENDER_ID || HEADER + senderLen + 2 + MAC > buf.length) {
    return { ok: false, error: 'bad-sender' };
  }
  const sender = buf.toString('latin1', HEADER, HEADER + senderLen);
  if (!SENDER_RE.test(sender)) return { ok: false, error: 'bad-sender' };
  const payloadLen = buf.readUInt16BE(HEADER + senderLen);
  const bodyLen = HEADER + senderLen + 2 + payloadLen;
  if (payloadLen > MAX_PAYLOAD || bodyLen + MAC !== buf.length) return { ok: false, error: 'bad-length' };
  const timestamp = Number(buf.readBigUInt64BE(6));
  return {
    ok: true,
    value: {
      type: type as DatagramType,
      flags: buf.readUInt16BE(4),
      timestamp,
      seq: buf.readUInt32BE(14),
      sender,
      payload: buf.subarray(HEADER + senderLen + 2, bodyLen),
      signed: buf.subarray(0, bodyLen),
      mac: buf.subarray(bodyLen),
    },
  };
}

/** Constant-time check of the datagram's MAC with `key`. */
export function verifyDatagram(d: DecodedDatagram, key: Buffer): boolean {
  const expected = createHmac('sha256', key).update(d.signed).digest();
  return d.mac.length === expected.length && timingSafeEqual(d.mac, expected);
}
