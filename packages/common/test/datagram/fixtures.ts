import { DatagramType, encodeDatagram, type Datagram } from '@outpost/common';

export const KEY = Buffer.alloc(32, 0x5a);
export const OTHER_KEY = Buffer.alloc(32, 0xa5);
export const NOW = 1_763_683_200_000; // 2025-11-21T00:00:00Z

export function datagram(over: Partial<Datagram> = {}): Datagram {
  return { type: DatagramType.TICKLE, flags: 0x1, timestamp: NOW, seq: 0, sender: 'ss_site-7', payload: Buffer.alloc(0), ...over };
}

export const encode = (over: Partial<Datagram> = {}, key = KEY): Buffer => encodeDatagram(datagram(over), key);

/** xorshift32: a small seeded PRNG, so a fuzz failure replays exactly. */
export function xorshift32(seed: number): { next(): number; int(n: number): number; bytes(n: number): Buffer } {
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  return {
    next,
    int: (n) => next() % n,
    bytes: (n) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = next() & 0xff;
      return b;
    },
  };
}
