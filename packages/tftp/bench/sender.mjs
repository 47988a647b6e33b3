#!/usr/bin/env node
// Micro-benchmark of a lockstep sender's work per ACK (no sockets): BlockSender over a
// read-cache FileSource with the whole file in memory, a socket whose send() does
// nothing, and a busy poller crowded out as on a loaded server (500 transfers). Shows
// what our JS costs per block apart from dgram and the kernel. Run after `npx tsc --build`:
//   node packages/tftp/bench/sender.mjs
// Prints one line and a machine-readable summary line (`bench:tftp-sender {json}`).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockSender } from '../dist/transfer/sender.js';
import { BusyPoll } from '../dist/transfer/busy-poll.js';
import { ReadCache } from '../dist/source/read-cache.js';

const SIZE = 3 * 1024 * 1024;
const BLKSIZE = 1468;
const dir = await mkdtemp(join(tmpdir(), 'tftp-sender-bench-'));
const path = join(dir, 'img');
await writeFile(path, randomBytes(SIZE));
const cache = new ReadCache(256 << 20, 1 << 20);
const busyPoll = new BusyPoll(200);
for (let i = 0; i < 500; i++) busyPoll.attach();
let sink = 0;
const socket = { send: (pkt) => (sink += pkt.length) };

/** One whole transfer, ACKed block by block; returns the blocks sent. */
async function transfer() {
  const source = cache.acquire(path, SIZE, 1);
  await source.load(0, SIZE);
  let done = false;
  const s = new BlockSender({ socket, port: 1, address: '127.0.0.1', source, blksize: BLKSIZE, windowsize: 1, timeoutMs: 1000, retries: 5, buckets: [], connected: true, busyPoll, onEnd: () => (done = true) });
  s.start();
  let b = 1;
  while (!done) s.onAck(b++ & 0xffff);
  s.cancel();
  source.close();
  return b - 1;
}

for (let i = 0; i < 20; i++) await transfer(); // warm up
let blocks = 0;
const t0 = process.hrtime.bigint();
for (let i = 0; i < 200; i++) blocks += await transfer();
const ns = Number(process.hrtime.bigint() - t0) / blocks;
await rm(dir, { recursive: true, force: true });
console.log(`${'BlockSender.onAck + next DATA (1468 B)'.padEnd(40)} ${ns.toFixed(0).padStart(6)} ns/block  (${blocks} blocks, ${sink} bytes)`);
console.log(`bench:tftp-sender ${JSON.stringify({ nsPerBlock: Math.round(ns) })}`);
