import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  decodeDatagram,
  DatagramType,
  encodeDatagram,
  MAX_DATAGRAM,
  MAX_PAYLOAD,
  MAX_SENDER_ID,
  openDatagram,
  ReplayGuard,
  TickleFlags,
  verifyDatagram,
  type DatagramDecodeError,
  type DecodedDatagram,
} from '@outpost/common';
import { datagram, encode, KEY, NOW, OTHER_KEY } from './fixtures.js';

function decoded(buf: Buffer): DecodedDatagram {
  const r = decodeDatagram(buf);
  if (!r.ok) throw new Error(`decode failed: ${r.error}`);
  return r.value;
}

function decodeError(buf: Buffer): DatagramDecodeError | undefined {
  const r = decodeDatagram(buf);
  return r.ok ? undefined : r.error;
}

describe('encodeDatagram / decodeDatagram', () => {
  it.each([
    ['tickle', { type: DatagramType.TICKLE, flags: TickleFlags.WORK | TickleFlags.CONFIG, payload: Buffer.from('job-42') }],
    ['heartbeat', { type: DatagramType.HEARTBEAT, flags: 0, payload: Buffer.from('{"load":0.5}') }],
    ['heartbeat-ack', { type: DatagramType.HEARTBEAT_ACK, flags: 0xffff, payload: Buffer.alloc(0) }],
  ] as const)('round-trips a %s with its fields and a valid MAC', (_name, fields) => {
    const d = datagram({ ...fields, seq: 0xfffffffe, sender: 'agent-01.example' });
    const buf = encodeDatagram(d, KEY);
    const out = decoded(buf);
    expect({ type: out.type, flags: out.flags, timestamp: out.timestamp, seq: out.seq, sender: out.sender, payload: out.payload }).toEqual(d);
    expect(verifyDatagram(out, KEY)).toBe(true);
    expect(verifyDatagram(out, OTHER_KEY)).toBe(false);
  });

  it('lays the fields out as documented (big-endian, MAC last)', () => {
    const buf = encode({ type: DatagramType.HEARTBEAT, flags: 0x0102, timestamp: 0x0102030405, seq: 0x0a0b0c0d, sender: 'ab', payload: Buffer.from([9, 8, 7]) });
    expect(buf.subarray(0, 26).toString('hex')).toBe(
      ['4f50', '01', '02', '0102', '0000000102030405', '0a0b0c0d', '02', '6162', '0003', '090807'].join(''),
    );
    expect(buf).toHaveLength(19 + 2 + 2 + 3 + 32);
    const out = decoded(buf);
    expect(out.signed.equals(buf.subarray(0, 26))).toBe(true);
    expect(out.mac.equals(buf.subarray(26))).toBe(true);
  });

  it('round-trips the largest datagram (64-byte sender, 256-byte payload) within MAX_DATAGRAM', () => {
    const buf = encode({ sender: 'x'.repeat(MAX_SENDER_ID), payload: Buffer.alloc(MAX_PAYLOAD, 7) });
    expect(buf).toHaveLength(19 + 64 + 2 + 256 + 32);
    expect(buf.length).toBeLessThanOrEqual(MAX_DATAGRAM);
    expect(decoded(buf).payload).toEqual(Buffer.alloc(MAX_PAYLOAD, 7));
  });

  it('writes floor(timestamp), clamps a negative one to 0 and wraps seq to uint32', () => {
    expect(decoded(encode({ timestamp: NOW + 0.9 })).timestamp).toBe(NOW);
    expect(decoded(encode({ timestamp: -5 })).timestamp).toBe(0);
    expect(decoded(encode({ seq: -1 })).seq).toBe(0xffffffff);
    expect(decoded(encode({ seq: 2 ** 32 + 3 })).seq).toBe(3);
  });

  it.each([
    ['an empty sender', { sender: '' }],
    ['a 65-byte sender', { sender: 'x'.repeat(65) }],
    ['a sender with a space', { sender: 'a b' }],
    ['a sender with a control character', { sender: 'a\nb' }],
    ['a non-ASCII sender', { sender: 'agent-é' }],
    ['a 257-byte payload', { payload: Buffer.alloc(257) }],
  ])('refuses to encode %s (RangeError)', (_name, over) => {
    expect(() => encode(over)).toThrow(RangeError);
  });

  it('returns payload, signed and mac as views of the input buffer (no copy)', () => {
    const buf = encode({ payload: Buffer.from('abc') });
    const out = decoded(buf);
    expect(out.payload.buffer).toBe(buf.buffer);
    expect(out.mac).toHaveLength(32);
  });
});

describe('decodeDatagram errors', () => {
  const valid = (): Buffer => encode({ sender: 'abc', payload: Buffer.from('xyz') });
  // Offsets for sender 'abc': sender length at 18, payload length at 22..23.
  const patch = (f: (b: Buffer) => void): Buffer => {
    const b = valid();
    f(b);
    return b;
  };

  it.each([
    ['too-long', () => Buffer.alloc(MAX_DATAGRAM + 1)],
    ['too-long', () => Buffer.concat([valid(), Buffer.alloc(MAX_DATAGRAM)])],
    ['too-short', () => Buffer.alloc(0)],
    ['too-short', () => Buffer.alloc(19 + 1 + 2 + 32 - 1)],
    ['too-short', () => valid().subarray(0, 53)],
    ['bad-magic', () => patch((b) => b.writeUInt16BE(0x4f51, 0))],
    ['bad-magic', () => patch((b) => (b[0] = 0))],
    ['bad-version', () => patch((b) => (b[2] = 0))],
    ['bad-version', () => patch((b) => (b[2] = 2))],
    ['bad-type', () => patch((b) => (b[3] = 0))],
    ['bad-type', () => patch((b) => (b[3] = 4))],
    ['bad-type', () => patch((b) => (b[3] = 255))],
    ['bad-sender', () => patch((b) => (b[18] = 0))],
    ['bad-sender', () => patch((b) => (b[18] = 65))],
    ['bad-sender', () => patch((b) => (b[18] = 255))],
    ['bad-sender', () => patch((b) => (b[20] = 0x20))],
    ['bad-sender', () => patch((b) => (b[20] = 0x7f))],
    ['bad-sender', () => patch((b) => (b[20] = 0xe9))],
    ['bad-sender', () => patch((b) => (b[18] = 40))],
    ['bad-length', () => patch((b) => b.writeUInt16BE(4, 22))],
    ['bad-length', () => patch((b) => b.writeUInt16BE(2, 22))],
    ['bad-length', () => patch((b) => b.writeUInt16BE(0xffff, 22))],
    ['bad-length', () => Buffer.concat([valid(), Buffer.from([0])])],
    ['bad-length', () => valid().subarray(0, valid().length - 1)],
    ['bad-length', () => patch((b) => (b[18] = 2))],
  ] as const)('reports %s', (error, make) => {
    expect(decodeError(make())).toBe(error);
  });

  it('reports bad-length for a payload length above 256 even when the buffer matches it', () => {
    const body = Buffer.alloc(19 + 1 + 2 + 257);
    body.writeUInt16BE(0x4f50, 0);
    body[2] = 1;
    body[3] = 1;
    body[18] = 1;
    body[19] = 0x41;
    body.writeUInt16BE(257, 20);
    expect(decodeError(Buffer.concat([body, Buffer.alloc(32)]))).toBe('bad-length');
  });
});

describe('openDatagram', () => {
  const anyKey = (): Buffer => KEY;

  it('accepts an authentic, fresh datagram', () => {
    const r = openDatagram(encode(), anyKey, new ReplayGuard(), NOW);
    expect(r.ok && r.value.sender).toBe('ss_site-7');
  });

  it('drops a datagram from a sender without a key as unknown-sender', () => {
    expect(openDatagram(encode(), () => undefined, new ReplayGuard(), NOW)).toEqual({ ok: false, reason: 'unknown-sender' });
  });

  it('drops a datagram signed with another key as bad-mac, leaving the replay guard untouched', () => {
    const guard = new ReplayGuard();
    expect(openDatagram(encode({}, OTHER_KEY), anyKey, guard, NOW)).toEqual({ ok: false, reason: 'bad-mac' });
    expect(guard.size).toBe(0);
    // A forged datagram must not burn the genuine sender's next stamp.
    expect(openDatagram(encode({ seq: 5 }, OTHER_KEY), anyKey, guard, NOW).ok).toBe(false);
    expect(openDatagram(encode({ seq: 1 }), anyKey, guard, NOW).ok).toBe(true);
  });

  it('drops a datagram replayed with the same timestamp and sequence', () => {
    const guard = new ReplayGuard();
    const buf = encode({ seq: 7 });
    expect(openDatagram(buf, anyKey, guard, NOW).ok).toBe(true);
    expect(openDatagram(buf, anyKey, guard, NOW + 5)).toEqual({ ok: false, reason: 'replay' });
  });

  it('drops stale and future datagrams by the receiver clock', () => {
    expect(openDatagram(encode({ timestamp: NOW - 120_001 }), anyKey, new ReplayGuard(), NOW)).toEqual({ ok: false, reason: 'stale' });
    expect(openDatagram(encode({ timestamp: NOW + 120_001 }), anyKey, new ReplayGuard(), NOW)).toEqual({ ok: false, reason: 'future' });
  });

  it('reports the decode error for malformed bytes', () => {
    expect(openDatagram(Buffer.from('hello'), anyKey, new ReplayGuard(), NOW)).toEqual({ ok: false, reason: 'too-short' });
  });

  it('drops a datagram with any single byte tampered, as bad-mac or a decode error', () => {
    const original = encode({ type: DatagramType.HEARTBEAT, sender: 'agent-9', payload: Buffer.from('{"v":1}'), seq: 3 });
    const reasons = new Set<string>();
    for (let i = 0; i < original.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const tampered = Buffer.from(original);
        tampered[i]! ^= mask;
        const r = openDatagram(tampered, anyKey, new ReplayGuard(), NOW);
        expect(r.ok, `byte ${i} ^ 0x${mask.toString(16)} was accepted`).toBe(false);
        if (!r.ok) reasons.add(r.reason);
      }
    }
    expect([...reasons].every((r) => ['bad-mac', 'bad-magic', 'bad-version', 'bad-type', 'bad-sender', 'bad-length'].includes(r))).toBe(true);
    expect(reasons.has('bad-mac')).toBe(true);
  });
});

describe('README', () => {
  it('shows the same wire layout as the comment in datagram/codec.ts', async () => {
    const block = (text: string): string[] => {
      const lines = text.split('\n');
      const start = lines.findIndex((l) => /offset\s+size\s+field/.test(l));
      const end = lines.findIndex((l, i) => i > start && /```/.test(l));
      return lines.slice(start, end).map((l) => l.replace(/^\s*\*(?= |$) ?/, '').trimEnd());
    };
    const source = block(await readFile(new URL('../../src/datagram/codec.ts', import.meta.url), 'utf8'));
    const readme = block(await readFile(new URL('../../README.md', import.meta.url), 'utf8'));
    expect(source.length).toBeGreaterThan(10);
    expect(readme).toEqual(source);
  });
});
