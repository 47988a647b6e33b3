/**
 * Reads the NUL-terminated string that starts at `offset`. Returns the index of the NUL
 * (so the next field starts at end + 1), or -1 when the datagram ends first.
 */
export function findNul(buf: Uint8Array, offset: number): number {
  return buf.indexOf(0, offset);
}

/** Writes `s` as UTF-8 plus a NUL at `offset`; returns the offset after the NUL. */
export function writeCString(buf: Buffer, s: string, offset: number): number {
  const n = buf.write(s, offset, 'utf8');
  buf[offset + n] = 0;
  return offset + n + 1;
}

export function cStringLength(s: string): number {
  return Buffer.byteLength(s, 'utf8') + 1;
}
