#!/usr/bin/env node
// Where a gateway's memory goes per idle mTLS tunnel (issue 7). Not part of
// bench:gateway: a quick probe to measure one change at a time, in one process.
//
//   node --expose-gc scripts/bench/gateway/mem-probe.mjs VARIANT [N]
//
// VARIANT: `gateway` (the real gateway from packages/gateway/dist, static core, with a
// backend: client TLS + upstream TCP per tunnel), or a bare TLS server holding N idle
// mTLS connections: `tls` (TLS 1.3, tickets), `tls-noticket` (SSL_OP_NO_TICKET),
// `tls-store` (SSL_OP_NO_TICKET and a session store on newSession/resumeSession),
// `tls12` (TLS 1.2 only). Add `--openssl-config=packages/gateway/openssl.cnf` to measure
// with the OpenSSL settings the gateway's workers get (one TLS 1.3 ticket, not two).
// Clients run in child processes (scripts/bench/gateway/client.mjs). Prints RSS, JS heap,
// external and the per connection deltas (after a full GC) as one JSON line.
import { fork, spawn } from 'node:child_process';
import { constants } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { createServer as createTlsServer } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { makeCerts } from './certs.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
const variant = process.argv[2] ?? 'gateway';
const N = Number(process.argv[3] ?? 4000);
const gc = globalThis.gc ?? (() => undefined);
const children = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));


async function rssNow() {
  const st = await readFile('/proc/self/status', 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(st)[1]) * 1024;
}

async function snapshot() {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 100));
  }
  const m = process.memoryUsage();
  return { rss: await rssNow(), heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-memprobe-'));
  const certs = makeCerts(dir);
  const cert = await readFile(certs.serverCert);
  const key = await readFile(certs.serverKey);
  const ca = await readFile(certs.ca);
  let port;
  let via = 'haproxy';
  let targets = ['x:1'];
  const held = [];
  let stop = async () => undefined;
  if (variant === 'gateway') {
    // backend.mjs with port 0 picks one per worker: use a fixed free port instead.
    const { createServer } = await import('node:net');
    const p = await new Promise((r) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const q = s.address().port;
        s.close(() => r(q));
      });
    });
    const child = spawn(process.execPath, [join(here, 'backend.mjs'), String(p)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BENCH_BACKEND_WORKERS: '1' } });
    children.push(child);
    await new Promise((res) => createInterface({ input: child.stdout }).once('line', res));
    const { createGateway, gatewayConfigSchema } = await import(join(root, 'packages/gateway/dist/index.js'));
    const extra = JSON.parse(process.env.PROBE_GATEWAY ?? '{}');
    const cfg = gatewayConfigSchema.parse({
      name: 'probe',
      dataDir: join(dir, 'gw'),
      listen: { host: '127.0.0.1', port: 0 },
      metrics: { enabled: false },
      tls: { certFile: certs.serverCert, keyFile: certs.serverKey },
      cores: [{ id: 'bench', caFile: certs.ca, routes: [`127.0.0.2:${p}`] }],
      limits: { maxPerClient: 1_000_000, handshakeRate: 1_000_000, handshakeBurst: 1_000_000, handshakeTimeout: '60s', headTimeout: '60s' },
      ...extra,
    });
    const gw = createGateway(cfg, { processMetrics: false });
    await gw.start();
    port = gw.port;
    via = 'ours';
    targets = [`127.0.0.2:${p}`];
    stop = () => gw.stop();
  } else {
    const opts = { cert, key, ca, requestCert: true, rejectUnauthorized: true };
    if (variant === 'tls-noticket') opts.secureOptions = constants.SSL_OP_NO_TICKET;
    if (variant === 'tls12') opts.maxVersion = 'TLSv1.2';
    if (variant === 'tls-store') opts.secureOptions = constants.SSL_OP_NO_TICKET;
    const s = createTlsServer(opts, (sock) => held.push(sock));
    if (variant === 'tls-store') {
      const store = new Map();
      s.on('newSession', (id, data, cb) => {
        store.set(id.toString('hex'), data);
        cb();
      });
      s.on('resumeSession', (id, cb) => cb(null, store.get(id.toString('hex')) ?? null));
      process.on('exit', () => console.error(`sessions stored: ${store.size}, bytes ${[...store.values()].reduce((n, b) => n + b.length, 0)}`));
    }
    await new Promise((r) => s.listen(0, '127.0.0.1', r));
    port = s.address().port;
  }
  const before = await snapshot();
  const procs = Math.max(1, Math.ceil(N / 5000));
  const per = Math.ceil(N / procs);
  const clients = Array.from({ length: procs }, (_, i) => {
    const job = { mode: 'idle', via, port, localAddress: `127.0.0.${40 + i}`, targets, count: Math.min(per, N - i * per), concurrency: 32, holdMs: 600_000, deadlineMs: 900_000, ...certs };
    const c = fork(join(here, 'client.mjs'), [JSON.stringify(job)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    children.push(c);
    return c;
  });
  let peak = 0;
  const sampler = setInterval(() => void rssNow().then((r) => (peak = Math.max(peak, r))), 200);
  const ready = await Promise.all(clients.map((c) => new Promise((r) => c.once('message', r))));
  const opened = ready.reduce((s, r) => s + r.opened, 0);
  await new Promise((r) => setTimeout(r, 1000));
  const after = await snapshot();
  clearInterval(sampler);
  peak = Math.max(peak, after.rss);
  const per1 = (k) => Math.round((after[k] - before[k]) / opened);
  const out = { variant, opened, failed: ready.reduce((s, r) => s + r.failed, 0), before: Object.fromEntries(Object.entries(before).map(([k, v]) => [k, Math.round(v / 1048576)])), afterMiB: Object.fromEntries(Object.entries(after).map(([k, v]) => [k, Math.round(v / 1048576)])), peakMiB: Math.round(peak / 1048576), perConnBytes: { rss: per1('rss'), peakRss: Math.round((peak - before.rss) / opened), heapUsed: per1('heapUsed'), external: per1('external'), arrayBuffers: per1('arrayBuffers'), native: per1('rss') - per1('heapTotal') }, load: (await readFile('/proc/loadavg', 'utf8')).split(' ')[0] };
  if (process.env.PROBE_SNAPSHOT) {
    const { writeHeapSnapshot } = await import('node:v8');
    out.snapshot = writeHeapSnapshot(process.env.PROBE_SNAPSHOT);
  }
  console.log(JSON.stringify(out));
  for (const c of clients) c.kill('SIGKILL');
  for (const s of held) s.destroy();
  await stop();
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
