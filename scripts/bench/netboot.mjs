#!/usr/bin/env node
// Network boot load benchmark (issue 6): N simulated PXE clients boot at once from
// Outpost's netboot service, then from dnsmasq in proxy mode, on the same network and
// with the same clients. Each client: DHCPDISCOVER (60 = PXEClient, 93 = 0) → proxy
// offer → DHCPREQUEST to the boot server's port 4011 → ACK with the boot file → TFTP of
// a 30 MiB image at blksize 1468 (lockstep, as a BIOS PXE ROM). For N = 200 and 1,000:
// p50/p99 offer latency, time until all have their image, failures, and the ratio
// dnsmasq completion time / ours (>= 1.0 = ours at least as fast).
// Targets: p99 offer < 100 ms at 1,000 clients, every image delivered, ratio >= 1.0.
//
// Network (root; nothing touches the machine's own interfaces): a server namespace
// with a bridge br0 (10.66.0.1/16) where ours or dnsmasq runs (one at a time: both
// want 67, 4011 and 69), and a client namespace joined to the bridge by a veth whose
// end carries one address per client (10.66.1.1, 10.66.1.2, ...: as if the site's DHCP
// server had leased them; that server's work is the same for both and not measured).
// The server namespace holds a permanent ARP entry per client address (the kernel's
// shared neighbour table would otherwise overflow at ~1,000 entries). DISCOVERs go by
// broadcast from 0.0.0.0:68 and offers come back by broadcast, as on a real segment.
// One process plays every client's DHCP part (so offer latency is not the TFTP
// clients' event-loop lag) and BENCH_PROCS processes run the downloads, each from
// its client's own address. A client whose download fails boots again from its
// DISCOVER (a firmware retry), at most 3 boots, and counts as a failure if it has no
// image by the deadline.
//
// Prints one line per scenario, a machine-readable summary line (`bench:netboot {json}`)
// and writes bench-results/netboot-<time>.json. Knobs: BENCH_N (200,1000),
// BENCH_MIB (30, image size), BENCH_SCALE (1; e.g. 0.1 → N 20,100 and a 3 MiB image,
// for a quick run), BENCH_SERVERS (ours,dnsmasq), BENCH_PROCS (2, TFTP client
// processes), BENCH_RAMP_MS (1000: clients power on spread over this long; 0 = all in
// the same instant), BENCH_WINDOWSIZE (unset: lockstep; dnsmasq 2.90 has no windowsize),
// BENCH_SCENARIO_S (900, deadline per scenario), BENCH_LARGE_MIB (unset: every N gets the
// full image, as the issue asks, about 12 minutes in all on the 2-core VM, 4 of them per
// server at 1,000 × 30 MiB; e.g. 3 gives N >= 1,000 a 3 MiB image for a run near 4
// minutes, and the line before the scenario says so). One run of the N = 1,000 pair
// varies by about ±6 % on that VM: compare the median of several runs, alternating which
// server goes first (BENCH_SERVERS=dnsmasq,ours). Both servers are sized for the
// clients: dnsmasq gets --tftp-max=N (its default 50 would turn most away), ours
// sessions.max = N (its default 200 makes the rest wait, at most sessions.maxWait = 60 s,
// longer than a wave of 200 × 30 MiB takes here); BENCH_OURS_SESSIONS overrides ours,
// BENCH_OURS_WORKERS its TFTP worker threads (default: netboot's, 2 on 2 cores),
// BENCH_OURS_TFTP more of its netboot `tftp` settings as JSON (e.g. '{"workerNice":0}').
// Everything else of ours is the netboot default (TFTP workers included, if any).
import { spawn, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRandom, writeResult } from './lib/files.mjs';
import { benchHarness, inNs, stopChild } from './lib/harness.mjs';
import { clockTicksPerSecond, cpuTicks, hwm, loadavg } from './lib/proc.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const here = join(root, 'scripts/bench/netboot');
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const NS_LIST = (process.env.BENCH_N ?? '200,1000').split(',').map((s) => Math.max(1, Math.round(Number(s) * SCALE)));
const MIB = Number(process.env.BENCH_MIB ?? 30) * SCALE;
const FILE_BYTES = Math.max(1, Math.round(MIB * 1024 * 1024));
const LARGE_N = 1000;
const LARGE_BYTES = process.env.BENCH_LARGE_MIB ? Math.min(FILE_BYTES, Math.max(1, Math.round(Number(process.env.BENCH_LARGE_MIB) * SCALE * 1024 * 1024))) : FILE_BYTES;
/** The image size for n clients: the full image, or BENCH_LARGE_MIB from LARGE_N clients on. */
const imageBytes = (n) => (n >= LARGE_N * SCALE ? LARGE_BYTES : FILE_BYTES);
const SERVERS = (process.env.BENCH_SERVERS ?? 'ours,dnsmasq').split(',').map((s) => s.trim());
const PROCS = Math.max(1, Number(process.env.BENCH_PROCS ?? 2));
const RAMP_MS = Number(process.env.BENCH_RAMP_MS ?? 1000);
const WINDOWSIZE = process.env.BENCH_WINDOWSIZE ? Number(process.env.BENCH_WINDOWSIZE) : undefined;
const SCENARIO_MS = Number(process.env.BENCH_SCENARIO_S ?? 900) * 1000;
const MAX_BOOTS = 3;
const BLKSIZE = 1468;
const DEADLINE_MS = 60 * 60_000;
const NS_S = `onb-s${process.pid}`;
const NS_C = `onb-c${process.pid}`;
const SERVER_IP = '10.66.0.1';
const FILE = 'img.0'; // dnsmasq's pxe-service adds ".0" to the basename for x86PC
const TARGET = { p99OfferMs: 100, ratio: 1.0 };
const maxN = Math.max(...NS_LIST);
if (maxN > 60_000) throw new Error('BENCH_N: at most 60,000 clients (one /16)');
for (const s of SERVERS) if (s !== 'ours' && s !== 'dnsmasq') throw new Error(`BENCH_SERVERS: unknown server ${s}`);

const { log, sh, cleanup, need, track, startChild } = benchHarness({ tag: 'bench:netboot', namespaces: [NS_S, NS_C], deadlineMs: DEADLINE_MS });

/** Client i's address: 10.66.1.1 ... (250 per /24, inside 10.66.0.0/16). */
const clientIp = (i) => `10.66.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;

function network(n) {
  const ipb = (ns, lines) => execFileSync('ip', ['-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n`, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 });
  sh('ip', ['netns', 'add', NS_S]);
  sh('ip', ['netns', 'add', NS_C]);
  ipb(NS_S, ['link set lo up', 'link add br0 type bridge', 'link set br0 type bridge forward_delay 0 stp_state 0', `addr add ${SERVER_IP}/16 dev br0`, 'link set br0 up']);
  ipb(NS_C, ['link set lo up']);
  sh('ip', ['link', 'add', 'vx', 'netns', NS_C, 'type', 'veth', 'peer', 'name', 'vb', 'netns', NS_S]);
  ipb(NS_S, ['link set vb master br0', 'link set vb up', 'route add 255.255.255.255/32 dev br0']);
  ipb(NS_C, [...Array.from({ length: n }, (_, i) => `addr add ${clientIp(i)}/16 dev vx`), 'link set vx up', 'route add 255.255.255.255/32 dev vx']);
  const macOf = (ns, dev) => JSON.parse(sh('ip', ['-n', ns, '-j', 'link', 'show', dev]))[0].address;
  const clientMac = macOf(NS_C, 'vx');
  const brMac = macOf(NS_S, 'br0');
  ipb(NS_S, Array.from({ length: n }, (_, i) => `neigh replace ${clientIp(i)} lladdr ${clientMac} dev br0 nud permanent`));
  ipb(NS_C, [`neigh replace ${SERVER_IP} lladdr ${brMac} dev vx nud permanent`]);
}

const TICK = clockTicksPerSecond();
const pct = (xs, p) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

async function startServer(which, dir, n) {
  if (which === 'ours') {
    let stats;
    const s = await startChild(inNs(NS_S, [process.execPath, join(here, 'ours.mjs'), JSON.stringify({ dir: join(dir, `ours-${n}`), serverAddress: SERVER_IP, loaderDir: join(dir, 'root'), file: FILE, config: { sessions: { max: Number(process.env.BENCH_OURS_SESSIONS ?? Math.max(200, n)) }, tftp: { port: 69, ...(process.env.BENCH_OURS_WORKERS ? { workers: Number(process.env.BENCH_OURS_WORKERS) } : {}), ...JSON.parse(process.env.BENCH_OURS_TFTP ?? '{}') } } })]), {
      name: 'netboot',
      ready: (l) => l.startsWith('{"ready"'),
      onLine: (l) => {
        if (l.startsWith('{"stats"')) stats = JSON.parse(l).stats;
      },
    });
    return { child: s.child, pid: s.child.pid, stats: () => stats };
  }
  const argv = inNs(NS_S, [
    'dnsmasq', '--keep-in-foreground', '--log-facility=-', '--port=0', '--conf-file=/dev/null', '--pid-file=', '--user=root', '--group=root',
    '--interface=br0', '--bind-interfaces', `--dhcp-range=10.66.0.0,proxy,255.255.0.0`, '--pxe-service=x86PC,Outpost bench image,img',
    '--enable-tftp', `--tftp-root=${join(dir, 'root')}`, `--tftp-max=${Math.max(50, n)}`, `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
  ]);
  const child = track(spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }));
  let text = '';
  const tail = (d) => {
    text = (text + d).slice(-20_000);
  };
  child.stdout.on('data', tail);
  child.stderr.on('data', tail);
  const deadline = Date.now() + 10_000;
  while (!/DHCP, proxy on subnet/.test(text) || !/TFTP root is/.test(text)) {
    if (child.exitCode !== null) throw new Error(`dnsmasq exited: ${text}`);
    if (Date.now() > deadline) throw new Error(`dnsmasq not ready: ${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, pid: child.pid, stats: () => ({ log: text.split('\n').filter((l) => !/sent .* to /.test(l)).slice(-5) }) };
}

async function scenario(which, n, dir, fileBytes) {
  const server = await startServer(which, dir, n);
  const comm = (await readFile(`/proc/${server.pid}/comm`, 'utf8')).trim();
  if (comm !== 'node' && comm !== 'dnsmasq') throw new Error(`server pid ${server.pid} is ${comm}`);
  const cpu0 = await cpuTicks(server.pid);
  const load0 = await loadavg();

  const offers = [];
  const boots = new Array(n).fill(0);
  const done = new Map();
  const failed = new Map();
  const fails = { offer: 0, pxe: 0, tftp: 0 };
  const reasons = {};
  let t0 = 0;
  let finish;
  const allDone = new Promise((r) => (finish = r));
  const check = () => {
    if (done.size + failed.size >= n) finish();
  };

  const workers = [];
  for (let w = 0; w < PROCS; w++) {
    const s = await startChild(inNs(NS_C, [process.execPath, join(here, 'tftp-clients.mjs'), JSON.stringify({ blksize: BLKSIZE, windowsize: WINDOWSIZE, rrqPatienceMs: 60_000 })]), {
      name: `tftp clients ${w}`,
      ready: (l) => l.startsWith('{"ready"'),
      onLine: (l) => {
        const m = JSON.parse(l);
        if (m.done !== undefined) {
          if (m.bytes === fileBytes) done.set(m.done, m.at);
          else {
            reasons[`short ${m.bytes}`] = (reasons[`short ${m.bytes}`] ?? 0) + 1;
            failed.set(m.done, 'short');
          }
          check();
        } else if (m.fail !== undefined) {
          fails.tftp++;
          reasons[m.reason] = (reasons[m.reason] ?? 0) + 1;
          retry(m.fail, 'tftp');
        }
      },
    });
    workers.push(s.child);
  }
  let dhcp;
  const retry = (i, stage) => {
    if (boots[i] < MAX_BOOTS && Date.now() - t0 < SCENARIO_MS - 30_000) {
      boots[i]++;
      dhcp.stdin.write(`${JSON.stringify({ restart: i })}\n`);
    } else {
      failed.set(i, stage);
      check();
    }
  };
  const ips = Array.from({ length: n }, (_, i) => clientIp(i));
  const d = await startChild(inNs(NS_C, [process.execPath, join(here, 'dhcp-clients.mjs'), JSON.stringify({ ips, rampMs: RAMP_MS })]), {
    name: 'dhcp clients',
    ready: (l) => l.startsWith('{"start"'),
    onLine: (l) => {
      const m = JSON.parse(l);
      if (m.start) t0 = m.start;
      else if (m.offer !== undefined) offers.push(m.ms);
      else if (m.boot !== undefined) workers[m.boot % PROCS].stdin.write(`${JSON.stringify({ get: m.boot, ip: m.ip, server: m.server, file: m.file })}\n`);
      else if (m.fail !== undefined) {
        fails[m.stage]++;
        reasons[`no ${m.stage === 'offer' ? 'offer' : '4011 ACK'}`] = (reasons[`no ${m.stage === 'offer' ? 'offer' : '4011 ACK'}`] ?? 0) + 1;
        retry(m.fail, m.stage);
      }
    },
  });
  dhcp = d.child;
  for (let i = 0; i < n; i++) boots[i] = 1;
  // Progress every 10 s; the scenario ends when every client has its image or has failed, or at the deadline.
  const progress = setInterval(() => log(`${which} n=${n}: ${offers.length} offers, ${done.size} images, ${failed.size} failed, ${Math.round((Date.now() - t0) / 1000)} s`), 10_000);
  const timedOut = await Promise.race([allDone.then(() => false), new Promise((r) => setTimeout(() => r(true), SCENARIO_MS))]);
  clearInterval(progress);
  const end = Date.now();
  const cpuSecs = ((await cpuTicks(server.pid)) - cpu0) / TICK;
  const rss = await hwm(server.pid);
  for (const c of [dhcp, ...workers]) {
    c.stdin.end();
    await stopChild(c);
  }
  await stopChild(server.child);
  const last = done.size ? Math.max(...done.values()) : end;
  const r = {
    server: which,
    n,
    delivered: done.size,
    failed: n - done.size,
    failedStages: Object.fromEntries([...failed.values()].reduce((m, s) => m.set(s, (m.get(s) ?? 0) + 1), new Map())),
    timedOut,
    retriedBoots: boots.reduce((a, b) => a + b, 0) - n,
    errors: { ...fails, reasons },
    offers: offers.length,
    offerP50Ms: pct(offers, 50),
    offerP99Ms: pct(offers, 99),
    offerMaxMs: pct(offers, 100),
    completionS: +((last - t0) / 1000).toFixed(2),
    fileBytes,
    aggregateMBps: +((done.size * fileBytes) / ((last - t0) / 1000) / 1e6).toFixed(1),
    serverCpuSecs: +cpuSecs.toFixed(2),
    serverPeakRssMB: +(rss / 1e6).toFixed(1),
    loadavgStart: load0,
    loadavgEnd: await loadavg(),
    ...(which === 'ours' ? { ours: pickStats(server.stats()) } : {}),
  };
  console.log(
    `${which.padEnd(7)} n=${String(n).padStart(4)}  offer p50 ${fmt(r.offerP50Ms)} ms p99 ${fmt(r.offerP99Ms)} ms  all images in ${r.completionS} s (${r.aggregateMBps} MB/s)  delivered ${r.delivered}/${n}  failures ${r.failed} (retried boots ${r.retriedBoots})  server cpu ${r.serverCpuSecs} s rss ${r.serverPeakRssMB} MB  load ${r.loadavgStart[0]}→${r.loadavgEnd[0]}`,
  );
  if (Object.keys(reasons).length) log(`${which} n=${n} errors: ${JSON.stringify(reasons)}`);
  return r;
}
const fmt = (v) => (v === null ? '-' : v.toFixed(1));
function pickStats(s) {
  if (!s) return undefined;
  return { dhcp: s.dhcp ? { offers: s.dhcp.offers, pxeAcks: s.dhcp.pxeAcks, ignored: s.dhcp.ignored, malformed: s.dhcp.malformed, sendErrors: s.dhcp.sendErrors } : undefined, sessions: s.sessions, tftp: s.tftp, tftpConfig: s.tftpConfig };
}

async function main() {
  need({ rootFor: 'network namespaces, ports 67/68/69/4011', commands: ['ip', ...(SERVERS.includes('dnsmasq') ? ['dnsmasq'] : [])] });
  const dir = await mkdtemp(join(tmpdir(), 'outpost-bench-netboot-'));
  try {
    await mkdir(join(dir, 'root'));
    network(maxN);
    const versions = { largeBytes: LARGE_BYTES, dnsmasq: SERVERS.includes('dnsmasq') ? sh('dnsmasq', ['--version']).split('\n')[0] : undefined, node: process.version, cpus: cpus().length };
    const loadStart = await loadavg();
    console.log(`image ${FILE_BYTES} bytes, blksize ${BLKSIZE}${WINDOWSIZE ? `, windowsize ${WINDOWSIZE}` : ', lockstep'}; clients ${NS_LIST.join(', ')} (ramp ${RAMP_MS} ms, ${PROCS} TFTP client processes); load average at the start: ${loadStart.join(' ')} (${versions.cpus} CPUs)`);
    const results = [];
    let written = 0;
    for (const n of NS_LIST) {
      const bytes = imageBytes(n);
      if (bytes !== written) {
        await writeRandom(join(dir, 'root', FILE), bytes);
        written = bytes;
      }
      if (bytes !== FILE_BYTES) {
        const rate = results.filter((r) => r.delivered === r.n).map((r) => r.aggregateMBps).sort((a, b) => a - b)[0];
        const est = rate ? ` (at the slowest rate measured so far, ${rate} MB/s, ${n} × ${FILE_BYTES / 1048576} MiB would take ~${Math.round((n * FILE_BYTES) / 1e6 / rate / 60)} min per server)` : '';
        console.log(`n=${n}: image ${+(bytes / 1048576).toFixed(2)} MiB instead of ${+(FILE_BYTES / 1048576).toFixed(2)} MiB, to keep the run short${est}; BENCH_LARGE_MIB=${FILE_BYTES / 1048576} runs the full size`);
      }
      for (const which of SERVERS) results.push(await scenario(which, n, dir, bytes));
    }
    const byN = {};
    for (const n of NS_LIST) {
      const o = results.find((r) => r.server === 'ours' && r.n === n);
      const d = results.find((r) => r.server === 'dnsmasq' && r.n === n);
      const ratio = o && d && o.delivered === n && d.delivered === n ? +(d.completionS / o.completionS).toFixed(2) : null;
      byN[n] = { fileBytes: imageBytes(n), ratio, oursCompletionS: o?.completionS, dnsmasqCompletionS: d?.completionS, oursP99OfferMs: o?.offerP99Ms, dnsmasqP99OfferMs: d?.offerP99Ms, oursDelivered: o?.delivered, dnsmasqDelivered: d?.delivered };
      if (o && d) console.log(`n=${n} (${+(imageBytes(n) / 1048576).toFixed(2)} MiB): completion ours ${o.completionS} s, dnsmasq ${d.completionS} s → dnsmasq/ours ${ratio ?? '-'}x (target >= ${TARGET.ratio}x ${ratio !== null && ratio >= TARGET.ratio ? 'met' : 'MISSED'})`);
    }
    const big = results.filter((r) => r.server === 'ours' && r.n === maxN)[0];
    const summary = {
      fileBytes: FILE_BYTES,
      scale: SCALE,
      byN,
      oursP99OfferMsAtMax: big?.offerP99Ms ?? null,
      targetsMet: NS_LIST.every((n) => (byN[n].ratio ?? 0) >= TARGET.ratio) && results.filter((r) => r.server === 'ours').every((r) => r.delivered === r.n) && (big?.offerP99Ms ?? Infinity) < TARGET.p99OfferMs,
      loadavgStart: loadStart,
      loadavg: await loadavg(),
    };
    console.log(`load average at the end: ${summary.loadavg.join(' ')} (${versions.cpus} CPUs)`);
    console.log(`bench:netboot ${JSON.stringify(summary)}`);
    const file = await writeResult(root, 'netboot', { versions, config: { NS_LIST, FILE_BYTES, PROCS, RAMP_MS, WINDOWSIZE, BLKSIZE, MAX_BOOTS }, results, summary });
    log(`wrote ${file}`);
  } finally {
    cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  // Leftover child pipes must not keep the benchmark alive once it has printed.
  () => process.exit(0),
  (err) => {
    log(err);
    cleanup();
    process.exit(1);
  },
);
