import { describe, it, expect } from 'vitest';
import { decodePacket, encodeRequest, encodeData, encodeAck, encodeError, encodeOack, negotiateOptions, normalizeRequestPath, Opcode } from '../src/index.js';
import { prng } from '@outpost/testing';

function seeds(rand: () => number): Buffer[] {
  return [
    encodeRequest({ opcode: Opcode.RRQ, filename: 'boot/x', mode: 'octet', options: [['blksize', '1468'], ['tsize', '0'], ['windowsize', '16']] }),
    encodeRequest({ opcode: Opcode.WRQ, filename: 'up', mode: 'netascii', options: [] }),
    encodeData(1, Buffer.alloc(Math.floor(rand() * 600), 7)),
    encodeAck(65535),
    encodeError(8, 'nope'),
    encodeOack([['blksize', '99999999999999999999999'], ['timeout', '0']]),
  ];
}

function mutate(buf: Buffer, rand: () => number): Buffer {
  const b = Buffer.from(buf);
  const ops = 1 + Math.floor(rand() * 4);
  let out = b;
  for (let i = 0; i < ops; i++) {
    const r = rand();
    if (r < 0.3 && out.length > 0) out[Math.floor(rand() * out.length)] = Math.floor(rand() * 256);
    else if (r < 0.5) out = out.subarray(0, Math.floor(rand() * out.length));
    else if (r < 0.65) out = Buffer.concat([out, Buffer.alloc(Math.floor(rand() * 40), Math.floor(rand() * 256))]);
    else if (r < 0.8 && out.length > 0) out[Math.floor(rand() * out.length)] = 0;
    else if (r < 0.9) out = Buffer.concat([out, Buffer.from('x\0'.repeat(Math.floor(rand() * 100)))]);
    else if (out.length >= 2) out[1] = Math.floor(rand() * 9);
  }
  return out;
}

describe('decoder fuzz', () => {
  it('never throws on 20,000 random and mutated datagrams (seed 0x5eed)', () => {
    const rand = prng(0x5eed);
    const base = seeds(rand);
    let ok = 0;
    for (let i = 0; i < 20_000; i++) {
      const dgram =
        i % 2 === 0
          ? Buffer.from(Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)))
          : mutate(base[i % base.length]!, rand);
      const d = decodePacket(dgram);
      if (d.ok) {
        ok++;
        if (d.packet.opcode === Opcode.RRQ || d.packet.opcode === Opcode.WRQ) {
          negotiateOptions(d.packet.options, { maxBlksize: 1468, maxWindowsize: 64 });
          normalizeRequestPath(d.packet.filename, 'relative');
        }
      } else expect(typeof d.error).toBe('string');
    }
    // both branches were exercised
    expect(ok).toBeGreaterThan(1000);
    expect(ok).toBeLessThan(20_000);
  });

  it('handles option floods and huge option values without blowing up', () => {
    const many = Array.from({ length: 64 }, (_, i) => [`blksize`, String(i * 1e30)] as [string, string]);
    const d = decodePacket(encodeRequest({ opcode: Opcode.RRQ, filename: 'f', mode: 'octet', options: many }));
    expect(d.ok).toBe(true);
    if (d.ok && d.packet.opcode === Opcode.RRQ) {
      expect(negotiateOptions(d.packet.options, { maxBlksize: 1468, maxWindowsize: 64 }).blksize).toBe(512);
    }
  });
});
