#!/usr/bin/env node
// TFTP load benchmark (issue 5): @outpost/tftp against dnsmasq on the same 32 MiB file,
// downloaded by the same clients.
//   (a) 1 curl, blksize 1468            (b) 50 and 200 concurrent curls, blksize 1468
//   (c) atftp windowsize 16 (dnsmasq 2.90 has no windowsize: lockstep there)
//   (d) as (c) across a network-namespace pair with 1 ms added each way
// Both servers run inside a private network namespace (dnsmasq's TFTP port is fixed at
// 69 before 2.92, so it gets a namespace's own port 69); (d) adds a second namespace
// joined by a veth pair in 198.18.0.0/30 (RFC 2544 benchmarking range, exists only
// inside the namespaces). Without a netem qdisc (the dev kernels lack it) the delay is a
// UDP relay in this benchmark's own code (tftp/delay-relay.mjs), said so in the output.
// Our server runs as a child process (the outpost-tftp bin) so its CPU seconds
// (/proc/PID/stat) and peak RSS (VmHWM) are its own.
//
// Prints one line per figure, one machine-readable summary line (`bench:tftp {json}`),
// and writes bench-results/tftp-<time>.json. Needs root (namespaces), dnsmasq, curl,
// atftp. Knobs: BENCH_REPEAT (3, runs per single-client figure; the median counts),
// BENCH_D_MIB (8, file size for (d), where lockstep dnsmasq runs at ~0.5 MB/s),
// BENCH_CASES (all: a,b50,b200,c,d; e.g. BENCH_CASES=a to run (a) alone),
// BENCH_OURS_ARGS (extra `outpost-tftp serve` flags, e.g. "--workers 0").
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRandom, writeResult } from './lib/files.mjs';
import { benchHarness, inNs } from './lib/harness.mjs';
import { clockTicksPerSecond, cpuTicks, hwm, loadavg } from './lib/proc.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const D_MIB = Number(process.env.BENCH_D_MIB ?? 8);
const FILE_BYTES = 32 * 1024 * 1024;
const OUR_PORT = 6969;
const NS = `otftp-s${process.pid}`;
const NS_CLIENT = `otftp-c${process.pid}`;
const SERVER_IP = '198.18.0.1';
const CLIENT_IP = '198.18.0.2';
const RELAY_DNSMASQ = 7069;
const RELAY_OURS = 7070;
const TARGETS = { a: 1.0, b50: 1.0, b200: 1.0, c: 1.5, d: 8 };
const CASES = (process.env.BENCH_CASES ?? Object.keys(TARGETS).join(',')).split(',').map((c) => c.trim()).filter(Boolean);
for (const c of CASES) if (!(c in TARGETS)) throw new Error(`BENCH_CASES: unknown case ${c} (known: ${Object.keys(TARGETS).join(',')})`);
const OURS_ARGS = (process.env.BENCH_OURS_ARGS ?? '').split(/\s+/).filter(Boolean);
const SCENARIO_TIMEOUT_MS = 180_000;
const DEADLINE_MS = 20 * 60_000;

const { log, sh, cleanup, need, track, startChild } = benchHarness({ tag: 'bench:tftp', namespaces: [NS, NS_CLIENT], deadlineMs: DEADLINE_MS });

/** Starts a server or relay; resolves with its process once `ready(line)` holds for a line it printed. */
const start = async (argv, { name, ready }) => (await startChild(argv, { name, ready, timeoutMs: 10_000 })).child;

/** Runs a client command line (several clients in one shell) and returns wall seconds and bytes. */
function runClients(ns, script) {
  return new Promise((resolveRun) => {
    const t0 = performance.now();
    const child = track(spawn('ip', ['netns', 'exec', ns, 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const kill = setTimeout(() => child.kill('SIGKILL'), SCENARIO_TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(kill);
      resolveRun({ secs: (performance.now() - t0) / 1000, out, err, code });
    });
  });
}

const TICK = clockTicksPerSecond();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mbps = (bytes, secs) => bytes / secs / 1e6;

async function main() {
  need({ rootFor: 'for network namespaces and dnsmasq on port 69', commands: ['dnsmasq', 'curl', 'atftp', 'ip'] });
  const dir = await mkdtemp(join(tmpdir(), 'outpost-bench-tftp-'));
  try {
    await run(dir);
  } finally {
    cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

async function run(dir) {
  const files = join(dir, 'root');
  await mkdir(files);
  await writeRandom(join(files, 'img32'), FILE_BYTES);
  await writeRandom(join(files, 'imgd'), D_MIB * 1024 * 1024);

  // Namespaces: NS holds both servers (lo + veth end 198.18.0.1), NS_CLIENT the (d) clients.
  sh('ip', ['netns', 'add', NS]);
  sh('ip', ['netns', 'add', NS_CLIENT]);
  sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', NS_CLIENT, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', NS, 'link', 'add', 'vs', 'type', 'veth', 'peer', 'name', 'vc', 'netns', NS_CLIENT]);
  sh('ip', ['-n', NS, 'addr', 'add', `${SERVER_IP}/30`, 'dev', 'vs']);
  sh('ip', ['-n', NS_CLIENT, 'addr', 'add', `${CLIENT_IP}/30`, 'dev', 'vc']);
  sh('ip', ['-n', NS, 'link', 'set', 'vs', 'up']);
  sh('ip', ['-n', NS_CLIENT, 'link', 'set', 'vc', 'up']);
  let netem = false;
  try {
    sh('ip', ['netns', 'exec', NS, 'tc', 'qdisc', 'add', 'dev', 'vs', 'root', 'netem', 'delay', '1ms']);
    sh('ip', ['netns', 'exec', NS_CLIENT, 'tc', 'qdisc', 'add', 'dev', 'vc', 'root', 'netem', 'delay', '1ms']);
    netem = true;
  } catch {
    netem = false;
  }

  const dnsmasq = await start(
    inNs(NS, ['dnsmasq', '--keep-in-foreground', '--log-facility=-', '--port=0', '--enable-tftp', `--tftp-root=${files}`,
      `--listen-address=127.0.0.1,${SERVER_IP}`, '--bind-interfaces', '--user=root', '--group=root', '--conf-file=/dev/null',
      '--pid-file=', '--tftp-max=400', '--log-debug']),
    { name: 'dnsmasq', ready: (o) => /TFTP root is/.test(o) || /started, version/.test(o) },
  );
  await new Promise((r) => setTimeout(r, 300));
  const ours = await start(
    inNs(NS, [process.execPath, join(root, 'packages/tftp/dist/bin.js'), 'serve', files, '--port', String(OUR_PORT),
      '--address', '0.0.0.0', '--max-transfers', '400', '--log-level', 'info', ...OURS_ARGS]),
    { name: 'outpost-tftp', ready: (o) => o.includes('"event":"listening"') },
  );
  const ourPid = ours.pid; // `ip netns exec` execs: this is node's pid
  const comm = (await readFile(`/proc/${ourPid}/comm`, 'utf8')).trim();
  if (comm !== 'node') throw new Error(`expected our server's pid to be node, got ${comm}`);
  const dnsPid = dnsmasq.pid;
  const versions = {
    dnsmasq: sh('dnsmasq', ['--version']).split('\n')[0],
    curl: sh('curl', ['--version']).split('\n')[0],
    atftp: sh('sh', ['-c', 'atftp --version 2>&1 | head -1']).trim(),
    node: process.version,
    cpus: cpus().length,
  };
  log(versions);
  const loadStart = await loadavg();
  console.log(`load average at the start: ${loadStart.join(' ')} (${versions.cpus} CPUs)`);

  const servers = { dnsmasq: { port: 69, pid: dnsPid }, ours: { port: OUR_PORT, pid: ourPid } };
  const results = {};
  const cpu = { ours: 0, dnsmasq: 0 };

  async function measure(label, which, script, expectBytes, ns = NS) {
    const pid = servers[which].pid;
    const c0 = await cpuTicks(pid);
    const r = await runClients(ns, script);
    const used = ((await cpuTicks(pid)) - c0) / TICK;
    cpu[which] += used;
    const got = r.out.split(/\s+/).filter(Boolean).map(Number).reduce((a, b) => a + b, 0);
    const ok = got === expectBytes;
    if (!ok) log(`${label} ${which}: expected ${expectBytes} bytes, got ${got} (exit ${r.code}) ${r.err.slice(0, 300)}`);
    return { mbps: ok ? mbps(got, r.secs) : 0, secs: r.secs, cpuSecs: used, ok };
  }
  const curlLine = (port, n) =>
    `for i in $(seq ${n}); do curl -s --max-time 170 --tftp-blksize 1468 -o /dev/null -w '%{size_download}\\n' tftp://127.0.0.1:${port}/img32 & done; wait`;
  const atftpLine = (host, port, file) =>
    `atftp --option "windowsize 16" --option "blksize 1468" --get -r ${file} -l /dev/stdout ${host} ${port} 2>/dev/null | wc -c`;

  async function compare(label, mk, expectBytes, repeat, ns) {
    const runs = { dnsmasq: [], ours: [] };
    for (let i = 0; i < repeat; i++) {
      for (const which of ['dnsmasq', 'ours']) runs[which].push(await measure(label, which, mk(which), expectBytes, ns));
    }
    const d = median(runs.dnsmasq.map((x) => x.mbps));
    const o = median(runs.ours.map((x) => x.mbps));
    results[label] = {
      dnsmasqMBps: +d.toFixed(2),
      oursMBps: +o.toFixed(2),
      ratio: d > 0 ? +(o / d).toFixed(2) : null,
      target: TARGETS[label],
      oursCpuSecs: +runs.ours.reduce((a, x) => a + x.cpuSecs, 0).toFixed(2),
      dnsmasqCpuSecs: +runs.dnsmasq.reduce((a, x) => a + x.cpuSecs, 0).toFixed(2),
      runs: repeat,
    };
    const r = results[label];
    console.log(
      `${label.padEnd(5)} dnsmasq ${r.dnsmasqMBps.toFixed(1).padStart(7)} MB/s  ours ${r.oursMBps.toFixed(1).padStart(7)} MB/s  ours/dnsmasq ${String(r.ratio).padStart(5)}x  (target >= ${r.target}x ${r.ratio >= r.target ? 'met' : 'MISSED'})  cpu ours ${r.oursCpuSecs}s dnsmasq ${r.dnsmasqCpuSecs}s`,
    );
  }

  console.log(`file ${FILE_BYTES} bytes; median of ${REPEAT} runs for single-client figures; cases ${CASES.join(',')}${OURS_ARGS.length ? `; ours with ${OURS_ARGS.join(' ')}` : ''}`);
  if (CASES.includes('a')) await compare('a', (w) => curlLine(servers[w].port, 1), FILE_BYTES, REPEAT);
  if (CASES.includes('b50')) await compare('b50', (w) => curlLine(servers[w].port, 50), 50 * FILE_BYTES, 1);
  if (CASES.includes('b200')) await compare('b200', (w) => curlLine(servers[w].port, 200), 200 * FILE_BYTES, 1);
  if (CASES.includes('c')) await compare('c', (w) => atftpLine('127.0.0.1', servers[w].port, 'img32'), FILE_BYTES, REPEAT);

  // (d): clients in NS_CLIENT, servers in NS, 1 ms each way.
  let relay;
  let delayHow = '(d) not run';
  if (CASES.includes('d')) {
    let dHost = SERVER_IP;
    const dPorts = { dnsmasq: 69, ours: OUR_PORT };
    if (!netem) {
      relay = await start(
        inNs(NS_CLIENT, [process.execPath, join(root, 'scripts/bench/tftp/delay-relay.mjs'), '127.0.0.1', CLIENT_IP,
          `${RELAY_DNSMASQ}:${SERVER_IP}:69,${RELAY_OURS}:${SERVER_IP}:${OUR_PORT}`, '1']),
        { name: 'delay relay', ready: (o) => o.includes('ready') },
      );
      dHost = '127.0.0.1';
      dPorts.dnsmasq = RELAY_DNSMASQ;
      dPorts.ours = RELAY_OURS;
    }
    delayHow = netem ? 'tc netem delay 1ms on both veth ends' : 'no netem qdisc on this kernel: 1 ms each way added by a UDP delay relay (scripts/bench/tftp/delay-relay.mjs) in the client namespace';
    console.log(`(d) ${delayHow}; file ${D_MIB} MiB`);
    await compare('d', (w) => atftpLine(dHost, dPorts[w], 'imgd'), D_MIB * 1024 * 1024, 1, NS_CLIENT);
    if (relay) relay.kill('SIGTERM');
  }

  const peakRss = await hwm(ourPid);
  const summary = {
    ...Object.fromEntries(CASES.map((k) => [k, results[k].ratio])),
    oursCpuSecs: +cpu.ours.toFixed(2),
    dnsmasqCpuSecs: +cpu.dnsmasq.toFixed(2),
    oursPeakRssMB: +(peakRss / 1e6).toFixed(1),
    delay: netem ? 'netem' : 'relay',
    targetsMet: CASES.every((k) => (results[k].ratio ?? 0) >= TARGETS[k]),
    cases: CASES,
    loadavgStart: loadStart,
    loadavg: await loadavg(),
  };
  console.log(`our server: ${summary.oursCpuSecs} CPU s over all runs (dnsmasq ${summary.dnsmasqCpuSecs} s), peak RSS ${summary.oursPeakRssMB} MB`);
  console.log(`load average at the end: ${summary.loadavg.join(' ')} (${versions.cpus} CPUs)`);
  console.log(`bench:tftp ${JSON.stringify(summary)}`);
  ours.kill('SIGTERM');
  dnsmasq.kill('SIGTERM');
  const file = await writeResult(root, 'tftp', { versions, fileBytes: FILE_BYTES, dFileBytes: D_MIB * 1024 * 1024, delay: delayHow, results, summary });
  log(`wrote ${file}`);
}

main().catch((err) => {
  log(err);
  cleanup();
  process.exit(1);
});
