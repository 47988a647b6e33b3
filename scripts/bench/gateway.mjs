#!/usr/bin/env node
// Internet gateway benchmark (issue 7): HAProxy (Debian package; TCP mode, TLS with
// `verify required ca-file`) against our gateway (outpost-gateway, static core), with
// the same ECDSA P-256 certificates and the same backend, all on loopback:
//   (a) BENCH_TUNNELS (15000,50000) concurrent idle mTLS tunnels with TCP keepalive:
//       peak RSS and CPU seconds of the proxy (every process of it), opening and idle;
//   (b) full mTLS handshakes per second (each a new connection with one request), and
//       the same with TLS session resumption;
//   (c) small requests per second (keep-alive, BENCH_REQ_CONNS connections) and bulk
//       MB/s (BENCH_BULK_CONNS connections, 16 MiB answers) through a tunnel; BENCH_PHASES
//       runs a part of (b) and (c), e.g. `BENCH_TUNNELS= BENCH_PHASES=requests,bulk`.
// Open files are capped at 20,000 per process here: clients run in several processes
// from 127.0.0.x source addresses, the backend in node:cluster workers, our gateway with
// `workers` and HAProxy as several instances on one SO_REUSEPORT port, each held under
// ~9,000 tunnels. Prints `ours/HAProxy` per figure, one `bench:gateway {json}` line, and
// writes bench-results/gateway-<time>.json. Every phase is bounded in time.
import { execFileSync, fork, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeCerts } from './gateway/certs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const here = join(root, 'scripts/bench/gateway');
const env = process.env;
const TUNNELS = (env.BENCH_TUNNELS ?? '15000,50000').split(',').filter(Boolean).map(Number);
const PHASE_MS = Number(env.BENCH_PHASE_MS ?? 8_000);
const IDLE_MS = Number(env.BENCH_IDLE_MS ?? 10_000);
const CLIENTS = Number(env.BENCH_CLIENTS ?? 2);
const REQ_CONNS = Number(env.BENCH_REQ_CONNS ?? 64);
const BULK_CONNS = Number(env.BENCH_BULK_CONNS ?? 4);
const HS_CONC = Number(env.BENCH_HS_CONCURRENCY ?? 32);
// Which of (b) and (c) to run (a comma list of handshakes,resumed,requests,bulk); with
// BENCH_TUNNELS= this measures the request path alone.
const PHASES = (env.BENCH_PHASES ?? 'handshakes,resumed,requests,bulk').split(',').filter(Boolean);
// Tunnels per proxy process: 2 fds each under the 20,000 open-files cap, so the fewest
// processes the cap allows (50,000 -> 6).
const PER_PROCESS = Number(env.BENCH_PER_PROCESS ?? 9_000);
// Ours runs this many workers in (b) and (c), as HAProxy runs this many threads.
const CORES = Number(env.BENCH_CORES ?? Math.min(2, availableParallelism()));
const BULK_BYTES = 16 * 1024 * 1024;
const DEADLINE_MS = 30 * 60_000;
const BACKENDS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const log = (...a) => console.error('[bench:gateway]', ...a);
const children = new Set();
const killAll = () => {
  for (const c of children) c.kill('SIGKILL');
};
setTimeout(() => {
  log('did not finish within the deadline; stopping');
  killAll();
  process.exit(2);
}, DEADLINE_MS).unref();
process.on('exit', killAll);

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

const hasHaproxy = (() => {
  try {
    execFileSync('haproxy', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const p = s.address().port;
  await new Promise((r) => s.close(r));
  return p;
}

// ---------------------------------------------------------------- process accounting

async function childrenOf(pid) {
  const out = [];
  try {
    for (const t of (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).split(' ').filter(Boolean)) out.push(Number(t), ...(await childrenOf(Number(t))));
  } catch {
    // gone
  }
  return out;
}
async function procStat(pid) {
  try {
    const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
    const st = await readFile(`/proc/${pid}/status`, 'utf8');
    return { cpuMs: (Number(f[11]) + Number(f[12])) * 10, rss: Number(/^VmRSS:\s+(\d+) kB/m.exec(st)?.[1] ?? 0) * 1024 };
  } catch {
    return { cpuMs: 0, rss: 0 };
  }
}
/** CPU ms and RSS bytes of a proxy: its processes and their children. */
async function usage(pids) {
  const all = new Set();
  for (const p of pids) {
    all.add(p);
    for (const c of await childrenOf(p)) all.add(c);
  }
  let cpuMs = 0;
  let rss = 0;
  for (const p of all) {
    const s = await procStat(p);
    cpuMs += s.cpuMs;
    rss += s.rss;
  }
  return { cpuMs, rss, processes: all.size };
}
/** Samples RSS every 250 ms until stopped; the peak. */
function rssSampler(pids) {
  let peak = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      peak = Math.max(peak, (await usage(pids)).rss);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    return Math.max(peak, (await usage(pids)).rss);
  };
}

// ---------------------------------------------------------------- backend (certificates: gateway/certs.mjs)


async function lineFrom(child, what, ms = 30_000) {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms);
    createInterface({ input: child.stdout }).once('line', (l) => {
      clearTimeout(t);
      res(l);
    });
    child.once('exit', (c) => rej(new Error(`${what} exited with ${c}`)));
  });
}

async function startBackend() {
  const port = await freePort();
  const workers = Math.max(4, Math.ceil((Math.max(...TUNNELS, 0) + 1) / 15_000));
  const child = track(spawn(process.execPath, [join(here, 'backend.mjs'), String(port)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...env, BENCH_BACKEND_WORKERS: String(workers) } }));
  await lineFrom(child, 'backend');
  return { port, child };
}

// ---------------------------------------------------------------- proxies

async function startHaproxy(dir, certs, backendPort, instances) {
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  const servers = BACKENDS.map((ip, i) => `  server b${i} ${ip}:${backendPort}`).join('\n');
  await writeFile(
    cfg,
    `global
  maxconn 9500
  nbthread ${instances > 1 ? 1 : CORES}
  ssl-default-bind-options ssl-min-ver TLSv1.2
  tune.ssl.cachesize 100000
defaults
  mode tcp
  timeout connect 5s
  timeout client 10m
  timeout server 10m
  maxconn 9500
frontend fe
  bind 127.0.0.1:${port} ssl crt ${certs.serverPem} ca-file ${certs.ca} verify required
  default_backend be
backend be
  balance roundrobin
${servers}
`,
  );
  const procs = [];
  for (let i = 0; i < instances; i++) {
    const p = track(spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] }));
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    procs.push(p);
    p.once('exit', (code) => code && log(`haproxy exited ${code}: ${err.slice(0, 400)}`));
  }
  await waitPort(port);
  await new Promise((r) => setTimeout(r, 300));
  return { name: 'haproxy', port, pids: procs.map((p) => p.pid), limits: `${instances} instance(s) on one SO_REUSEPORT port, maxconn 9500 each`, stop: () => stopAll(procs) };
}

async function startOurs(dir, certs, backendPort, workers) {
  const port = await freePort();
  const cfg = join(dir, `gateway-${workers}.json`);
  await writeFile(
    cfg,
    JSON.stringify({
      gateway: {
        name: 'bench',
        dataDir: join(dir, 'gw-data'),
        listen: { host: '127.0.0.1', port, backlog: 8192 },
        metrics: { enabled: false },
        tls: { certFile: certs.serverCert, keyFile: certs.serverKey },
        cores: [{ id: 'bench', caFile: certs.ca, routes: BACKENDS.map((ip) => `${ip}:${backendPort}`) }],
        workers,
        // Same footing as HAProxy, which runs no admission limiter here and bounds a
        // handshake only by `timeout client 10m` (a loaded box can take > 10 s to finish
        // one of 50,000 handshakes: that was a reset, not a failure of the proxy).
        limits: { maxConnections: 60_000, maxPerClient: 1_000_000, handshakeRate: 1_000_000, handshakeBurst: 1_000_000, handshakeTimeout: '60s', headTimeout: '60s', idleTimeout: '10m' },
      },
    }),
  );
  const p = track(spawn(process.execPath, [join(root, 'packages/gateway/dist/bin.js'), '--config', cfg], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...env, OUTPOST_LOG__LEVEL: 'warn' } }));
  await waitPort(port);
  await new Promise((r) => setTimeout(r, workers > 1 ? 1_500 : 300));
  return { name: 'ours', port, pids: [p.pid], limits: `${workers} worker process(es)`, stop: () => stopAll([p]) };
}

async function waitPort(port) {
  const { connect } = await import('node:net');
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} did not open in 20 s`);
}

function stopAll(procs) {
  return Promise.all(
    procs.map(
      (p) =>
        new Promise((r) => {
          if (p.exitCode !== null || p.signalCode !== null) return r();
          const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
          p.once('exit', () => (clearTimeout(t), r()));
          p.kill('SIGTERM');
        }),
    ),
  );
}

// ---------------------------------------------------------------- clients

function client(job) {
  const c = track(fork(join(here, 'client.mjs'), [JSON.stringify(job)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  const messages = [];
  const waiters = [];
  c.on('message', (m) => {
    const w = waiters.shift();
    if (w) w(m);
    else messages.push(m);
  });
  const next = (ms) =>
    new Promise((res, rej) => {
      if (messages.length) return res(messages.shift());
      const t = setTimeout(() => rej(new Error(`client ${job.mode}: no answer in ${ms} ms`)), ms);
      waiters.push((m) => (clearTimeout(t), res(m)));
      c.once('exit', (code) => (clearTimeout(t), rej(new Error(`client exited ${code}`))));
    });
  return { child: c, next, send: (m) => c.send(m) };
}

async function timedPhase(proxy, certs, backendPort, mode, extra) {
  const before = await usage(proxy.pids);
  const clients = Array.from({ length: CLIENTS }, (_, i) =>
    client({ mode, via: proxy.name, port: proxy.port, localAddress: `127.0.0.${10 + i}`, targets: BACKENDS.map((ip) => `${ip}:${backendPort}`), durationMs: PHASE_MS, ...certs, deadlineMs: PHASE_MS + 60_000, ...extra }),
  );
  const results = await Promise.all(clients.map((c) => c.next(PHASE_MS + 60_000)));
  const after = await usage(proxy.pids);
  const sum = (k) => results.reduce((n, r) => n + (r[k] ?? 0), 0);
  const errors = sum('errors');
  if (errors > 0) log(`${proxy.name} ${mode}: ${errors} errors (first: ${results.find((r) => r.firstError)?.firstError})`);
  return { ops: sum('ops'), perSecond: Math.round(sum('ops') / (PHASE_MS / 1000)), mbPerSecond: Math.round(sum('bytes') / 1048576 / (PHASE_MS / 1000)), errors, resumed: sum('resumed'), proxyCpuS: (after.cpuMs - before.cpuMs) / 1000 };
}

const ROUNDS = Number(env.BENCH_ROUNDS ?? 2);

/**
 * (b) and (c), both proxies running: each phase alternates HAProxy and ours for
 * BENCH_ROUNDS rounds and keeps each one's best round (the box is shared: alternating
 * spreads other load over both).
 */
async function throughput(proxies, certs, backendPort) {
  const phases = {
    handshakes: ['hs', { concurrency: HS_CONC, resume: false }, 'perSecond'],
    resumed: ['hs', { concurrency: HS_CONC, resume: true }, 'perSecond'],
    requests: ['req', { concurrency: Math.ceil(REQ_CONNS / CLIENTS) }, 'perSecond'],
    bulk: ['bulk', { concurrency: Math.ceil(BULK_CONNS / CLIENTS), bulkBytes: BULK_BYTES }, 'mbPerSecond'],
  };
  const out = Object.fromEntries(proxies.map((p) => [p.name, {}]));
  for (const [name, [mode, extra, key]] of Object.entries(phases).filter(([n]) => PHASES.includes(n))) {
    log(`${name}: ${proxies.map((p) => p.name).join(' / ')} alternately, ${ROUNDS} round(s) of ${PHASE_MS / 1000} s`);
    for (let r = 0; r < ROUNDS; r++) {
      for (const p of proxies) {
        const res = await timedPhase(p, certs, backendPort, mode, extra);
        if (!out[p.name][name] || res[key] > out[p.name][name][key]) out[p.name][name] = res;
      }
    }
  }
  return out;
}

async function tunnels(proxy, certs, backendPort, n) {
  const procs = Math.ceil(n / 12_500);
  const per = Math.ceil(n / procs);
  const base = await usage(proxy.pids);
  const peak = rssSampler(proxy.pids);
  const t0 = Date.now();
  const clients = Array.from({ length: procs }, (_, i) =>
    client({ mode: 'idle', via: proxy.name, port: proxy.port, localAddress: `127.0.0.${20 + i}`, targets: BACKENDS.map((ip) => `${ip}:${backendPort}`), count: Math.min(per, n - i * per), concurrency: 64, holdMs: 600_000, deadlineMs: 900_000, ...certs }),
  );
  const ready = await Promise.all(clients.map((c) => c.next(600_000)));
  const openS = (Date.now() - t0) / 1000;
  const opened = ready.reduce((s, r) => s + r.opened, 0);
  const failed = ready.reduce((s, r) => s + r.failed, 0);
  const afterOpen = await usage(proxy.pids);
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const afterIdle = await usage(proxy.pids);
  for (const c of clients) c.send({ t: 'close' });
  const done = await Promise.all(clients.map((c) => c.next(60_000)));
  const alive = done.reduce((s, r) => s + r.alive, 0);
  const peakRss = await peak();
  if (failed > 0) log(`${proxy.name} ${n} tunnels: ${failed} failed (first: ${ready.find((r) => r.firstError)?.firstError})`);
  return {
    tunnels: n,
    opened,
    failed,
    aliveAfterIdle: alive,
    openSeconds: Math.round(openS * 10) / 10,
    peakRssMiB: Math.round(peakRss / 1048576),
    rssPerTunnelKiB: opened ? Math.round((peakRss - base.rss) / 1024 / opened) : 0,
    openCpuS: (afterOpen.cpuMs - base.cpuMs) / 1000,
    idleCpuS: (afterIdle.cpuMs - afterOpen.cpuMs) / 1000,
    processes: afterOpen.processes,
    limits: proxy.limits,
  };
}

// ---------------------------------------------------------------- main

const ratio = (a, b) => (b ? Math.round((a / b) * 100) / 100 : null);

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-bench-gw-'));
  try {
    const certs = makeCerts(dir);
    const backend = await startBackend();
    const { loadavg } = await import('node:os');
    const result = { when: new Date().toISOString(), haproxy: hasHaproxy, phaseMs: PHASE_MS, loadAverageAtStart: loadavg()[0], ours: { tunnels: [] }, haproxyResults: { tunnels: [] } };
    if (!hasHaproxy) log('haproxy is not installed (apt-get install -y haproxy): measuring ours alone');
    const kinds = hasHaproxy ? ['haproxy', 'ours'] : ['ours'];
    const single = [];
    try {
      if (hasHaproxy) single.push(await startHaproxy(dir, certs, backend.port, 1));
      single.push(await startOurs(dir, certs, backend.port, CORES));
      const t = await throughput(single, certs, backend.port);
      Object.assign(result.ours, t.ours);
      if (hasHaproxy) Object.assign(result.haproxyResults, t.haproxy);
    } finally {
      for (const p of single) await p.stop();
    }
    for (const n of TUNNELS) {
      for (const kind of kinds) {
        const out = kind === 'ours' ? result.ours : result.haproxyResults;
        const k = Math.ceil(n / PER_PROCESS);
        log(`${kind}: ${n} idle tunnels (${k} process(es))`);
        const p = kind === 'ours' ? await startOurs(dir, certs, backend.port, k) : await startHaproxy(dir, certs, backend.port, k);
        try {
          out.tunnels.push(await tunnels(p, certs, backend.port, n));
        } catch (err) {
          out.tunnels.push({ tunnels: n, error: err.message, limits: p.limits });
          log(`${kind} ${n} tunnels: ${err.message}`);
        } finally {
          await p.stop();
        }
      }
    }
    const o = result.ours;
    const h = result.haproxyResults;
    result.ratios = hasHaproxy
      ? {
          handshakes: ratio(o.handshakes?.perSecond, h.handshakes?.perSecond),
          resumed: ratio(o.resumed?.perSecond, h.resumed?.perSecond),
          requests: ratio(o.requests?.perSecond, h.requests?.perSecond),
          bulk: ratio(o.bulk?.mbPerSecond, h.bulk?.mbPerSecond),
          tunnelsRss: Object.fromEntries(o.tunnels.map((t, i) => [t.tunnels, ratio(t.peakRssMiB, h.tunnels[i]?.peakRssMiB)])),
        }
      : undefined;
    const targets = { tunnels50kRssUnder3GiB: (o.tunnels.find((t) => t.tunnels === 50_000)?.peakRssMiB ?? Infinity) < 3072, requests: 0.8, bulk: 0.6, handshakes: 0.5 };
    result.targets = targets;
    const line = (label, ours, theirs, unit, r, target) =>
      console.log(`${label.padEnd(26)} ours ${String(ours ?? '-').padStart(8)} ${unit.padEnd(8)} haproxy ${String(theirs ?? '-').padStart(8)} ${unit.padEnd(8)} ours/haproxy ${r ?? '-'}${target ? ` (target ${typeof target === 'number' ? `>= ${target}` : target})` : ''}`);
    result.loadAverageAtEnd = loadavg()[0];
    console.log(`\nbench:gateway: ours vs HAProxy on loopback (clients, backend and proxy share the box; load average ${result.loadAverageAtStart.toFixed(1)} -> ${result.loadAverageAtEnd.toFixed(1)}: read the ratios)`);
    // Per proxy CPU-second too: on a shared box the per-second figures depend on how much
    // CPU each proxy got; this one on how much each needs.
    const perCpu = (r, key) => (r?.proxyCpuS ? Math.round(r[key] * (PHASE_MS / 1000) / r.proxyCpuS) : null);
    result.perCpuSecond = Object.fromEntries(
      [['handshakes', 'perSecond'], ['resumed', 'perSecond'], ['requests', 'perSecond'], ['bulk', 'mbPerSecond']].map(([k, key]) => [k, { ours: perCpu(o[k], key), haproxy: perCpu(h[k], key), ratio: ratio(perCpu(o[k], key), perCpu(h[k], key)) }]),
    );
    const pc = result.perCpuSecond;
    line('full mTLS handshakes', o.handshakes?.perSecond, h.handshakes?.perSecond, '/s', result.ratios?.handshakes, 0.5);
    line('  per proxy CPU-second', pc.handshakes.ours, pc.handshakes.haproxy, '/cpu-s', pc.handshakes.ratio);
    line('resumed handshakes', o.resumed?.perSecond, h.resumed?.perSecond, '/s', result.ratios?.resumed);
    line('  per proxy CPU-second', pc.resumed.ours, pc.resumed.haproxy, '/cpu-s', pc.resumed.ratio);
    line('small requests', o.requests?.perSecond, h.requests?.perSecond, '/s', result.ratios?.requests, 0.8);
    line('  per proxy CPU-second', pc.requests.ours, pc.requests.haproxy, '/cpu-s', pc.requests.ratio);
    line('bulk', o.bulk?.mbPerSecond, h.bulk?.mbPerSecond, 'MB/s', result.ratios?.bulk, 0.6);
    line('  per proxy CPU-second', pc.bulk.ours, pc.bulk.haproxy, 'MB/cpu-s', pc.bulk.ratio);
    for (const t of o.tunnels) {
      const ht = h.tunnels.find((x) => x.tunnels === t.tunnels);
      line(`${t.tunnels} tunnels peak RSS`, t.peakRssMiB, ht?.peakRssMiB, 'MiB', result.ratios?.tunnelsRss?.[t.tunnels], t.tunnels === 50_000 ? '< 3072 MiB' : undefined);
      line(`${t.tunnels} tunnels open CPU`, t.openCpuS, ht?.openCpuS, 's', ratio(t.openCpuS, ht?.openCpuS));
      line(`${t.tunnels} tunnels idle CPU`, t.idleCpuS, ht?.idleCpuS, 's', ratio(t.idleCpuS, ht?.idleCpuS));
      console.log(`${''.padEnd(26)} ours: ${t.opened ?? 0} opened, ${t.failed ?? '-'} failed, ${t.limits}; haproxy: ${ht?.opened ?? 0} opened, ${ht?.failed ?? '-'} failed, ${ht?.limits ?? '-'}${t.error || ht?.error ? `; errors: ${t.error ?? ''} ${ht?.error ?? ''}` : ''}`);
    }
    console.log(`bench:gateway ${JSON.stringify({ ratios: result.ratios, perCpuSecond: result.perCpuSecond, targets, loadAverage: [result.loadAverageAtStart, result.loadAverageAtEnd] })}`);
    await mkdir(join(root, 'bench-results'), { recursive: true });
    const out = join(root, 'bench-results', `gateway-${result.when.replace(/[:.]/g, '-')}.json`);
    await writeFile(out, JSON.stringify(result, null, 2));
    log(`wrote ${out}`);
    backend.child.kill('SIGTERM');
  } finally {
    killAll();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    log(err.stack ?? err.message);
    killAll();
    process.exit(1);
  },
);
