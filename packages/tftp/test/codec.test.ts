import { describe, it, expect } from 'vitest';
import {
  Opcode,
  decodePacket,
  encodeRequest,
  decodeRequest,
  encodeData,
  decodeData,
  encodeAck,
  decodeAck,
  encodeError,
  decodeError,
  encodeOack,
  decodeOack,
} from '../src/index.js';

const bytes = (...parts: Array<string | number[]>): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

describe('RRQ/WRQ codec', () => {
  it('round-trips a read request with options', () => {
    const req = { opcode: Opcode.RRQ, filename: 'boot/ipxe.efi', mode: 'octet', options: [['blksize', '1468'], ['tsize', '0']] } as const;
    const wire = encodeRequest({ ...req, options: req.options.map(([k, v]) => [k, v]) });
    expect(wire).toEqual(bytes([0, 1], 'boot/ipxe.efi\0octet\0blksize\x001468\0tsize\x000\0'));
    const d = decodeRequest(wire);
    expect(d).toEqual({ ok: true, packet: { opcode: 1, filename: 'boot/ipxe.efi', mode: 'octet', options: [['blksize', '1468'], ['tsize', '0']] } });
  });

  it('lower-cases the mode and option names but keeps values', () => {
    const d = decodeRequest(bytes([0, 2], 'f\0NetASCII\0BlkSize\0ABC\0'));
    expect(d).toEqual({ ok: true, packet: { opcode: 2, filename: 'f', mode: 'netascii', options: [['blksize', 'ABC']] } });
  });

  it('strips trailing 0xFF bytes from the filename (firmware quirk)', () => {
    const d = decodeRequest(bytes([0, 1], 'pxelinux.0', [0xff, 0xff, 0], 'octet\0'));
    expect(d.ok && d.packet.filename).toBe('pxelinux.0');
  });

  it('ignores padding NULs and an incomplete trailing option', () => {
    const d = decodeRequest(bytes([0, 1], 'f\0octet\0\0\0tsize\x000\0blksize\0'));
    expect(d.ok && d.packet.options).toEqual([['tsize', '0']]);
  });

  it.each([
    ['a datagram shorter than an opcode', bytes([0]), 'short'],
    ['an unterminated filename', bytes([0, 1], 'file'), 'unterminated-string'],
    ['an unterminated mode', bytes([0, 1], 'file\0oct'), 'unterminated-string'],
    ['an unknown mode', bytes([0, 1], 'file\0binary\0'), 'bad-mode'],
    ['an empty filename', bytes([0, 1], '\0octet\0'), 'empty-filename'],
    ['a filename of only 0xFF', bytes([0, 1], [0xff, 0], 'octet\0'), 'empty-filename'],
    ['another opcode', bytes([0, 3, 0, 1]), 'bad-opcode'],
  ])('refuses %s', (_what, wire, error) => {
    expect(decodeRequest(wire)).toEqual({ ok: false, error });
  });

  it('refuses more than 64 option pairs', () => {
    const opts = Array.from({ length: 65 }, (_, i) => `o${i}\0${i}\0`).join('');
    expect(decodeRequest(bytes([0, 1], 'f\0octet\0', opts))).toEqual({ ok: false, error: 'too-many-options' });
  });
});

describe('DATA codec', () => {
  it('round-trips a block and returns a view, not a copy', () => {
    const wire = encodeData(65535, Buffer.from('hello'));
    expect(wire).toEqual(bytes([0, 3, 0xff, 0xff], 'hello'));
    const d = decodeData(wire);
    expect(d.ok && d.packet.block).toBe(65535);
    expect(d.ok && d.packet.data.buffer).toBe(wire.buffer);
  });
  it('accepts an empty final block and refuses a header-less datagram', () => {
    expect(decodeData(bytes([0, 3, 0, 0]))).toEqual({ ok: true, packet: { opcode: 3, block: 0, data: Buffer.alloc(0) } });
    expect(decodeData(bytes([0, 3, 0]))).toEqual({ ok: false, error: 'short' });
  });
});

describe('ACK codec', () => {
  it('round-trips and tolerates trailing bytes', () => {
    expect(encodeAck(258)).toEqual(bytes([0, 4, 1, 2]));
    expect(decodeAck(bytes([0, 4, 1, 2, 9, 9]))).toEqual({ ok: true, packet: { opcode: 4, block: 258 } });
    expect(decodeAck(bytes([0, 4, 1]))).toEqual({ ok: false, error: 'short' });
  });
});

describe('ERROR codec', () => {
  it('round-trips code and message', () => {
    const wire = encodeError(1, 'file not found');
    expect(wire).toEqual(bytes([0, 5, 0, 1], 'file not found\0'));
    expect(decodeError(wire)).toEqual({ ok: true, packet: { opcode: 5, code: 1, message: 'file not found' } });
  });
  it('reads a message without its NUL to the end of the datagram', () => {
    expect(decodeError(bytes([0, 5, 0, 8], 'no'))).toEqual({ ok: true, packet: { opcode: 5, code: 8, message: 'no' } });
  });
  it('truncates very long messages on encode', () => {
    expect(encodeError(0, 'x'.repeat(5000)).length).toBe(4 + 255 + 1);
  });
});

describe('OACK codec', () => {
  it('round-trips option pairs in order', () => {
    const wire = encodeOack([['blksize', '1468'], ['tsize', '33554432']]);
    expect(wire).toEqual(bytes([0, 6], 'blksize\x001468\0tsize\x0033554432\0'));
    expect(decodeOack(wire)).toEqual({ ok: true, packet: { opcode: 6, options: [['blksize', '1468'], ['tsize', '33554432']] } });
  });
  it('refuses an unterminated value', () => {
    expect(decodeOack(bytes([0, 6], 'blksize\x001468'))).toEqual({ ok: false, error: 'unterminated-string' });
  });
});

describe('decodePacket', () => {
  it('dispatches by opcode and refuses unknown opcodes and oversized datagrams', () => {
    expect(decodePacket(encodeAck(7))).toEqual({ ok: true, packet: { opcode: 4, block: 7 } });
    expect(decodePacket(bytes([0, 9, 0, 0]))).toEqual({ ok: false, error: 'bad-opcode' });
    expect(decodePacket(Buffer.alloc(70000, 0))).toEqual({ ok: false, error: 'oversized' });
  });
});
