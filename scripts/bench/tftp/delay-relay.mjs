#!/usr/bin/env node
// A UDP delay relay for TFTP, used by bench:tftp where the kernel has no netem qdisc.
// Every datagram is held DELAY_MS in each direction. TFTP changes ports per transfer
// (TIDs), so the relay mirrors them: each client endpoint gets its own upstream socket,
// and each server TID seen on it gets its own client-facing socket, so the client sees a
// new TID exactly as it would without the relay.
//
// usage: node delay-relay.mjs LISTEN_ADDR UPSTREAM_BIND SPEC[,SPEC...] DELAY_MS
//   SPEC = listenPort:serverAddr:serverPort
// Prints "ready" on stdout once every front port is bound. Bounded: it only forwards.
import { createSocket } from 'node:dgram';

const [listenAddr, upstreamBind, specs, delayText] = process.argv.slice(2);
const DELAY = Number(delayText);

/** A FIFO of due sends (constant delay keeps it ordered) drained by one timer. */
const queue = [];
let timer;
function later(fn) {
  queue.push([performance.now() + DELAY, fn]);
  if (!timer) timer = setTimeout(drain, DELAY);
}
function drain() {
  timer = undefined;
  const now = performance.now();
  while (queue.length > 0 && queue[0][0] <= now + 0.05) queue.shift()[1]();
  if (queue.length > 0) timer = setTimeout(drain, Math.max(0, queue[0][0] - now));
}

function bind(addr) {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, addr, () => {
      try {
        s.setRecvBufferSize(4 * 1024 * 1024);
        s.setSendBufferSize(4 * 1024 * 1024);
      } catch {}
      resolve(s);
    });
  });
}

async function front(listenPort, serverAddr, serverPort) {
  const listener = createSocket('udp4');
  const clients = new Map(); // "addr:port" -> Promise<upstream socket>
  listener.on('message', (msg, r) => {
    const key = `${r.address}:${r.port}`;
    let up = clients.get(key);
    if (!up) {
      up = bind(upstreamBind).then((sock) => {
        const fronts = new Map(); // server TID -> Promise<client-facing socket>
        sock.on('message', (back, s) => {
          let f = fronts.get(s.port);
          if (!f) {
            f = bind(listenAddr).then((fs) => {
              fs.on('message', (fwd) => later(() => sock.send(fwd, s.port, serverAddr)));
              return fs;
            });
            fronts.set(s.port, f);
          }
          later(() => void f.then((fs) => fs.send(back, r.port, r.address)));
        });
        return sock;
      });
      clients.set(key, up);
    }
    later(() => void up.then((sock) => sock.send(msg, serverPort, serverAddr)));
  });
  await new Promise((resolve) => listener.bind(listenPort, listenAddr, resolve));
}

for (const spec of specs.split(',')) {
  const [lp, sa, sp] = spec.split(':');
  await front(Number(lp), sa, Number(sp));
}
process.stdout.write('ready\n');
