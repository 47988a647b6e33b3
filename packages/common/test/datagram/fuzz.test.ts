import { describe, expect, it } from 'vitest';
import { decodeDatagram, DatagramType, encodeDatagram, MAX_DATAGRAM, MAX_PAYLOAD, openDatagram, ReplayGuard, type DecodeResult, type OpenResult } from '@outpost/common';
import { KEY, NOW, xorshift32 } from './fixtures.js';

const SEED = 0x0ddba11;
const ROUNDS = 20_000;
const keyFor = (): Buffer => KEY;

function mustNotThrow<T>(what: string, buf: Buffer, f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw new Error(`${what} threw on ${buf.toString('hex')}: ${(err as Error).message}`, { cause: err });
  }
}

/** Checks the decoder's promises about an accepted structure. */
function checkDecoded(buf: Buffer, r: DecodeResult): void {
  if (!r.ok) return;
  const d = r.value;
  expect(d.signed.length + d.mac.length).toBe(buf.length);
  expect(d.mac).toHaveLength(32);
  expect(d.payload.length).toBeLessThanOrEqual(MAX_PAYLOAD);
  expect(d.sender).toMatch(/^[\x21-\x7e]{1,64}$/);
}

describe('datagram fuzz', () => {
  it(`never throws on ${ROUNDS} random buffers of 0..600 bytes, and accepts none`, () => {
    const rng = xorshift32(SEED);
    const reasons = new Map<string, number>();
    for (let i = 0; i < ROUNDS; i++) {
      const buf = rng.bytes(rng.int(601));
      // Half of them get a plausible header so the fuzz reaches the deeper checks.
      if (i % 2 === 0 && buf.length >= 19) {
        buf.writeUInt16BE(0x4f50, 0);
        buf[2] = 1;
        buf[3] = 1 + rng.int(3);
        buf[18] = rng.int(8) === 0 ? buf[18]! : 1 + rng.int(Math.min(64, buf.length));
      }
      const decoded = mustNotThrow('decodeDatagram', buf, () => decodeDatagram(buf));
      checkDecoded(buf, decoded);
      const opened: OpenResult = mustNotThrow('openDatagram', buf, () => openDatagram(buf, keyFor, new ReplayGuard(), NOW));
      expect(opened.ok).toBe(false);
      if (!opened.ok) reasons.set(opened.reason, (reasons.get(opened.reason) ?? 0) + 1);
    }
    // Sanity: the generator exercised every early check.
    for (const r of ['too-short', 'too-long', 'bad-magic', 'bad-sender', 'bad-length']) expect(reasons.get(r) ?? 0).toBeGreaterThan(0);
  });

  it(`never throws on ${ROUNDS} mutations of valid datagrams, and accepts a mutation only when it is byte-identical`, () => {
    const rng = xorshift32(SEED ^ 0x5eed);
    const originals = Array.from({ length: 64 }, (_, i) => {
      const sender = Array.from({ length: 1 + rng.int(64) }, () => String.fromCharCode(0x21 + rng.int(94))).join('');
      return encodeDatagram(
        { type: (1 + (i % 3)) as DatagramType, flags: rng.int(0x10000), timestamp: NOW - 1000 + rng.int(2000), seq: rng.next(), sender, payload: rng.bytes(rng.int(MAX_PAYLOAD + 1)) },
        KEY,
      );
    });
    const mutate = (orig: Buffer): Buffer => {
      const b = Buffer.from(orig);
      const senderLen = b[18]!;
      switch (rng.int(7)) {
        case 0: {
          // 1..4 bit flips
          for (let k = 1 + rng.int(4); k > 0; k--) b[rng.int(b.length)]! ^= 1 << rng.int(8);
          return b;
        }
        case 1:
          b[rng.int(b.length)] = rng.int(256);
          return b;
        case 2:
          return b.subarray(0, rng.int(b.length));
        case 3:
          return Buffer.concat([b, rng.bytes(1 + rng.int(200))]);
        case 4:
          b[18] = rng.int(256);
          return b;
        case 5:
          b.writeUInt16BE(rng.int(4) === 0 ? rng.int(0x10000) : Math.max(0, b.readUInt16BE(19 + senderLen) + rng.int(9) - 4), 19 + senderLen);
          return b;
        default: {
          // Consistent-looking length change: grow/shrink the payload and fix the length field.
          const payloadLen = b.readUInt16BE(19 + senderLen);
          const delta = rng.int(17) - 8;
          const newLen = Math.max(0, payloadLen + delta);
          const body = b.subarray(0, 19 + senderLen + 2 + Math.min(payloadLen, newLen));
          const out = Buffer.concat([body, rng.bytes(Math.max(0, newLen - payloadLen)), b.subarray(b.length - 32)]);
          out.writeUInt16BE(newLen, 19 + senderLen);
          return out;
        }
      }
    };
    const reasons = new Map<string, number>();
    let identical = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const orig = originals[rng.int(originals.length)]!;
      const buf = mutate(orig);
      expect(buf.length).toBeLessThanOrEqual(MAX_DATAGRAM + 200);
      const decoded = mustNotThrow('decodeDatagram', buf, () => decodeDatagram(buf));
      checkDecoded(buf, decoded);
      const opened = mustNotThrow('openDatagram', buf, () => openDatagram(buf, keyFor, new ReplayGuard(), NOW));
      if (opened.ok) {
        expect(buf.equals(orig), `an altered datagram was accepted: ${buf.toString('hex')}`).toBe(true);
        identical++;
      } else {
        reasons.set(opened.reason, (reasons.get(opened.reason) ?? 0) + 1);
      }
    }
    // Sanity: most mutations got past the structure checks to the MAC, and some
    // (double flips of one bit) came back to the original and were rightly accepted.
    expect(reasons.get('bad-mac') ?? 0).toBeGreaterThan(ROUNDS / 4);
    expect(reasons.get('bad-length') ?? 0).toBeGreaterThan(0);
    expect(identical).toBeGreaterThan(0);
  });
});
