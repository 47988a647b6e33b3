#!/usr/bin/env node
// Micro-benchmark of the packet codec and the per-packet hot path (no sockets): how many
// operations per second each takes on this machine. Run after `npx tsc --build`:
//   node packages/tftp/bench/codec.mjs
// Prints one line per case and a machine-readable summary line (`bench:tftp-codec {json}`).
import {
  encodeRequest,
  decodePacket,
  encodeAck,
  encodeData,
  decodeData,
  encodeOack,
  negotiateOptions,
  normalizeRequestPath,
  Opcode,
} from '../dist/index.js';
import { ackBlock } from '../dist/packet/ack.js';
import { writeDataHeader } from '../dist/packet/data.js';

const rrq = encodeRequest({ opcode: Opcode.RRQ, filename: 'boot/x86_64/ipxe.efi', mode: 'octet', options: [['blksize', '1468'], ['tsize', '0'], ['windowsize', '4']] });
const ack = encodeAck(12345);
const data = encodeData(7, Buffer.alloc(1468, 1));
const payload = Buffer.alloc(1468, 2);
const pkt = Buffer.allocUnsafe(1472);

function bench(name, fn, iterations) {
  for (let i = 0; i < Math.min(iterations, 10_000); i++) fn(i); // warm up
  const t0 = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < iterations; i++) sink += fn(i) ? 1 : 0;
  const ns = Number(process.hrtime.bigint() - t0);
  const perSec = iterations / (ns / 1e9);
  console.log(`${name.padEnd(34)} ${(perSec / 1e6).toFixed(2).padStart(8)} M ops/s  ${(ns / iterations).toFixed(0).padStart(6)} ns/op`);
  return { perSec: Math.round(perSec), sink };
}

const results = {
  decodeRrq: bench('decodePacket(RRQ with 3 options)', () => decodePacket(rrq).ok, 500_000),
  negotiate: bench('negotiateOptions(3 options)', () => negotiateOptions([['blksize', '1468'], ['tsize', '0'], ['windowsize', '4']], { maxBlksize: 1468, maxWindowsize: 64 }).blksize, 500_000),
  normalizePath: bench('normalizeRequestPath', () => normalizeRequestPath('/boot/x86_64/ipxe.efi', 'relative').ok, 500_000),
  encodeOack: bench('encodeOack(2 options)', () => encodeOack([['blksize', '1468'], ['tsize', '33554432']]).length, 500_000),
  ackFastPath: bench('ackBlock (hot path ACK)', (i) => ackBlock(ack) === 12345 + (i & 0), 5_000_000),
  decodeAck: bench('decodePacket(ACK)', () => decodePacket(ack).ok, 2_000_000),
  decodeData: bench('decodeData(1468 B)', () => decodeData(data).ok, 2_000_000),
  fillData: bench('writeDataHeader + copy 1468 B', (i) => {
    writeDataHeader(pkt, i & 0xffff);
    return payload.copy(pkt, 4) === 1468;
  }, 2_000_000),
  encodeData: bench('encodeData(1468 B) (allocating)', (i) => encodeData(i & 0xffff, payload).length, 1_000_000),
};
const summary = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.perSec]));
console.log(`bench:tftp-codec ${JSON.stringify(summary)}`);
