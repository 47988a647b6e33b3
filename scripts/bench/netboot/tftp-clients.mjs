// The PXE firmware's TFTP side for bench:netboot: one process runs many downloads,
// each from its client's own address (a socket bound to it), as a PXE ROM does:
// RRQ octet with blksize 1468 and tsize 0 (windowsize only when BENCH_WINDOWSIZE is
// set), ACK 0 after the OACK, then lockstep ACKs (or one per window). Data is counted
// and dropped. Block numbers wrap to 0 after 65535.
//
// Timeouts: the RRQ is resent after 1, 2, 4, 8, 8, ... s up to `rrqPatienceMs` (a
// server that queues requests, or a busy one, is waited for); during the transfer the
// last ACK is resent after 1 s, at most 8 times; then the download has failed.
//
// argv[2] JSON: { blksize, windowsize?, rrqPatienceMs }. stdin: JSON lines
// {get: i, ip, server, file}. stdout: {done: i, bytes, ms, at, retransmits} or
// {fail: i, reason, bytes}.
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';

const args = JSON.parse(process.argv[2]);
const BLKSIZE = args.blksize ?? 1468;
const WINDOW = args.windowsize;
const PATIENCE = args.rrqPatienceMs ?? 60_000;
const DATA_TIMEOUT = 1000;
const DATA_RETRIES = 8;
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

function rrq(file) {
  const parts = [file, 'octet', 'tsize', '0', 'blksize', String(BLKSIZE)];
  if (WINDOW) parts.push('windowsize', String(WINDOW));
  return Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${parts.join('\0')}\0`, 'latin1')]);
}
const ack = (block) => Buffer.from([0, 4, (block >> 8) & 255, block & 255]);

function get(job) {
  const started = performance.now();
  const sock = createSocket('udp4');
  let expected = 1;
  let bytes = 0;
  let blksize = 512;
  let windowsize = 1;
  let inWindow = 0;
  let peerPort = 0;
  let lastAck;
  let timer;
  let retries = 0;
  let retransmits = 0;
  let ended = false;
  const req = rrq(job.file);
  const close = () => {
    try {
      sock.close();
    } catch {
      // closed
    }
  };
  const end = (o, finalAck) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    out({ ...o, at: Date.now(), ms: Math.round(performance.now() - started), retransmits });
    // The final ACK must leave before the socket closes (a send is asynchronous).
    if (finalAck) sock.send(finalAck, peerPort, job.server, close);
    else close();
  };
  const arm = (ms, fn) => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
  const sendAck = (b) => {
    lastAck = ack(b);
    sock.send(lastAck, peerPort, job.server);
    retries = 0;
    arm(DATA_TIMEOUT, onDataTimeout);
  };
  function onDataTimeout() {
    if (++retries > DATA_RETRIES) return end({ fail: job.get, reason: 'data-timeout', bytes });
    retransmits++;
    sock.send(lastAck, peerPort, job.server);
    arm(DATA_TIMEOUT, onDataTimeout);
  }
  let rrqDelay = 1000;
  const sendRrq = () => {
    if (performance.now() - started > PATIENCE) return end({ fail: job.get, reason: 'no-answer', bytes });
    sock.send(req, 69, job.server);
    arm(rrqDelay, () => {
      retransmits++;
      sendRrq();
    });
    rrqDelay = Math.min(8000, rrqDelay * 2);
  };
  sock.on('error', (err) => end({ fail: job.get, reason: `socket: ${err.code ?? err.message}`, bytes }));
  sock.on('message', (msg, rinfo) => {
    if (ended || msg.length < 4 || msg[0] !== 0) return;
    const op = msg[1];
    if (rinfo.address !== job.server) return;
    // Lock onto the server's transfer port (its TID).
    if (peerPort === 0) peerPort = rinfo.port;
    else if (rinfo.port !== peerPort) return;
    if (op === 3) {
      const block = (msg[2] << 8) | msg[3];
      if (block !== expected) {
        // An old or future block: go back to the last one we have (RFC 7440 / lockstep).
        if (lastAck && windowsize === 1) return;
        if (lastAck) sock.send(lastAck, peerPort, job.server);
        return;
      }
      const len = msg.length - 4;
      bytes += len;
      expected = (expected + 1) & 0xffff;
      if (len < blksize) {
        return end({ done: job.get, bytes }, ack(block));
      }
      if (++inWindow >= windowsize) {
        inWindow = 0;
        sendAck(block);
      } else arm(DATA_TIMEOUT, onDataTimeout);
      return;
    }
    if (op === 6) {
      // OACK: the options the server took.
      const f = msg.subarray(2).toString('latin1').split('\0');
      for (let i = 0; i + 1 < f.length; i += 2) {
        const k = f[i].toLowerCase();
        if (k === 'blksize') blksize = Number(f[i + 1]);
        if (k === 'windowsize') windowsize = Number(f[i + 1]);
      }
      sendAck(0);
      return;
    }
    if (op === 5) return end({ fail: job.get, reason: `error ${(msg[2] << 8) | msg[3]}: ${msg.subarray(4).toString('latin1').replace(/\0.*$/, '')}`, bytes });
  });
  sock.bind({ port: 0, address: job.ip }, () => {
    try {
      sock.setRecvBufferSize(256 * 1024);
    } catch {
      // the kernel caps it
    }
    sendRrq();
  });
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line);
  if (cmd.get !== undefined) get(cmd);
  if (cmd.quit) process.exit(0);
});
process.stdin.on('end', () => process.exit(0));
out({ ready: true });
