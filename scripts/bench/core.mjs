#!/usr/bin/env node
// Core load benchmark (issue 2): N simulated agents (default 100,000) enroll with the
// real core, then heartbeat over UDP and over HTTP, each for a fixed time, as fast as the
// core answers (closed loop: a window of heartbeats waiting for an answer; only answered
// ones count). The core runs in its own child process; the swarm in BENCH_WORKERS child
// processes. Prints figures against the targets, one machine-readable summary line
// (`bench:core {json}`), and writes bench-results/core-<time>.json.
//
// Knobs (environment): BENCH_AGENTS (100000), BENCH_WORKERS (1), BENCH_DURATION (20s),
// BENCH_UDP_WINDOW (1024, total over workers), BENCH_HTTP_CONNECTIONS (64, total),
// BENCH_ENROLL_CONCURRENCY (64, total), BENCH_UDP_SOCKETS (16 per worker),
// BENCH_CPU_PROF=1 (profile the core with node --cpu-prof and print its top functions).
import { fork, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LatencyHistogram, createCoreClient } from '@outpost/agent';
import { parseDuration } from '@outpost/common';
import { summariseProfile } from './core/profile-summary.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const env = process.env;
const int = (name, def) => {
  const v = env[name] === undefined ? def : Number(env[name]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
};
const AGENTS = int('BENCH_AGENTS', 100_000);
const WORKERS = int('BENCH_WORKERS', 1);
const DURATION_MS = parseDuration(env.BENCH_DURATION ?? '20s');
const UDP_WINDOW = int('BENCH_UDP_WINDOW', 1024);
const HTTP_CONNECTIONS = int('BENCH_HTTP_CONNECTIONS', 64);
const ENROLL_CONCURRENCY = int('BENCH_ENROLL_CONCURRENCY', 64);
const UDP_SOCKETS = int('BENCH_UDP_SOCKETS', 16);
const CPU_PROF = env.BENCH_CPU_PROF === '1';
const TARGETS = { udpPerSecond: 20_000, httpPerSecond: 5_000, rssBytes: 1024 ** 3 };
const BENCH_DEADLINE_MS = 30 * 60_000;

const resultsDir = join(root, 'bench-results');
const profileDir = join(resultsDir, 'profiles');
const log = (...a) => console.error('[bench:core]', ...a);
const children = [];
const guard = setTimeout(() => {
  log(`did not finish within ${BENCH_DEADLINE_MS / 60_000} min; stopping`);
  for (const c of children) c.kill('SIGKILL');
  process.exit(2);
}, BENCH_DEADLINE_MS);
guard.unref();

async function procStatus(pid) {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { vmRss: kb('VmRSS'), vmHwm: kb('VmHWM') };
}
async function cpuTimes(pid) {
  // utime + stime in clock ticks (fields 14, 15 of /proc/PID/stat); 100 Hz on Linux.
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}
const mib = (b) => `${(b / 1024 ** 2).toFixed(0)} MiB`;

async function startCore() {
  await mkdir(profileDir, { recursive: true });
  const args = [...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), join(root, 'scripts/bench/core/run-core.mjs')];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: root });
  children.push(child);
  const line = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error('the core did not start within 30 s')), 30_000);
    rl.once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`the core exited (${code}) before it started`)));
  });
  return { child, ...JSON.parse(line) };
}

function startWorker(options) {
  const child = fork(join(root, 'scripts/bench/core/swarm-worker.mjs'), [JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  const waiting = [];
  child.on('message', (msg) => {
    const w = waiting.shift();
    if (!w) return;
    if (msg.type === 'error') w.reject(new Error(`swarm worker: ${msg.message}`));
    else w.resolve(msg);
  });
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`swarm worker exited (${code})`));
  });
  const next = () => new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  const ready = next();
  return {
    child,
    ready,
    async ask(msg) {
      const answer = next();
      child.send(msg);
      return (await answer).report;
    },
  };
}

function mergeHeartbeats(reports) {
  const hist = new LatencyHistogram();
  const sum = (k) => reports.reduce((a, r) => a + r[k], 0);
  const codes = {};
  const drops = {};
  for (const r of reports) {
    hist.merge(r.histogram);
    for (const [k, v] of Object.entries(r.errorCodes)) codes[k] = (codes[k] ?? 0) + v;
    for (const [k, v] of Object.entries(r.ackDrops)) drops[k] = (drops[k] ?? 0) + v;
  }
  return {
    via: reports[0].via,
    agents: sum('agents'),
    sent: sum('sent'),
    answered: sum('acked'),
    timeouts: sum('timeouts'),
    errors: sum('errors'),
    errorCodes: codes,
    ackDrops: drops,
    durationMs: reports[0].durationMs,
    perSecond: Math.round((sum('ackedInWindow') / reports[0].durationMs) * 1000),
    latencyMs: hist.summary(),
  };
}

async function main() {
  log(`machine: ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'}), ${mib(totalmem())} RAM, node ${process.version}`);
  log(`agents ${AGENTS}, swarm workers ${WORKERS}, phases ${DURATION_MS / 1000} s, UDP window ${UDP_WINDOW}, HTTP connections ${HTTP_CONNECTIONS}`);
  const core = await startCore();
  log(`core pid ${core.pid} at ${core.url}, UDP ${core.datagramPort}`);
  const admin = createCoreClient({ coreUrl: core.url });
  const token = await admin.call('POST', '/tokens', { bearer: core.adminToken, body: { for: 'agent', uses: AGENTS, expires: '2h', note: 'bench:core' } });
  const rssIdle = await procStatus(core.pid);

  const share = (total, i) => Math.floor(total / WORKERS) + (i < total % WORKERS ? 1 : 0);
  let first = 0;
  const workers = [];
  for (let i = 0; i < WORKERS; i++) {
    const count = share(AGENTS, i);
    workers.push(
      startWorker({
        coreUrl: core.url,
        enrollToken: token.token,
        count,
        firstIndex: first,
        namePrefix: `bench-${i}`,
        concurrency: Math.max(1, share(ENROLL_CONCURRENCY, i)),
        udpSockets: UDP_SOCKETS,
        httpConnections: Math.max(1, share(HTTP_CONNECTIONS, i)),
        ackTimeoutMs: 2_000,
      }),
    );
    first += count;
  }
  await Promise.all(workers.map((w) => w.ready));

  // 1. Enrollment.
  log(`enrolling ${AGENTS} agents ...`);
  const cpu0 = await cpuTimes(core.pid);
  const e0 = performance.now();
  const enrollReports = await Promise.all(workers.map((w) => w.ask({ cmd: 'enroll' })));
  const enrollMs = performance.now() - e0;
  const enrollCpuMs = (await cpuTimes(core.pid)) - cpu0;
  const enrolled = enrollReports.reduce((a, r) => a + r.enrolled, 0);
  const enrollErrors = enrollReports.reduce((a, r) => a + r.errors, 0);
  const enrollment = {
    requested: AGENTS,
    enrolled,
    errors: enrollErrors,
    errorCodes: Object.assign({}, ...enrollReports.map((r) => r.errorCodes)),
    durationMs: Math.round(enrollMs),
    perSecond: Math.round((enrolled / enrollMs) * 1000),
    coreCpuPct: Math.round((enrollCpuMs / enrollMs) * 100),
    latencyMs: enrollReports[0].latency,
  };
  const rssEnrolled = await procStatus(core.pid);
  log(`enrolled ${enrolled}/${AGENTS} in ${(enrollMs / 1000).toFixed(1)} s (${enrollment.perSecond}/s, errors ${enrollErrors}); core RSS ${mib(rssEnrolled.vmRss)}`);
  if (enrolled === 0) throw new Error('no agent enrolled');

  // 2. Heartbeat phases.
  const phase = async (via, window) => {
    log(`${via} heartbeats for ${DURATION_MS / 1000} s ...`);
    const c0 = await cpuTimes(core.pid);
    const t0 = performance.now();
    const reports = await Promise.all(
      workers.map((w, i) => w.ask({ cmd: 'heartbeat', via, durationMs: DURATION_MS, window: Math.max(1, share(window, i)) })),
    );
    const wallMs = performance.now() - t0;
    const r = mergeHeartbeats(reports);
    r.coreCpuPct = Math.round((((await cpuTimes(core.pid)) - c0) / wallMs) * 100);
    log(`${via}: ${r.perSecond} hb/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, timeouts ${r.timeouts}, errors ${r.errors}, core CPU ${r.coreCpuPct} %`);
    return r;
  };
  const udp = await phase('udp', UDP_WINDOW);
  const rssAfterUdp = await procStatus(core.pid);
  const http = await phase('http', HTTP_CONNECTIONS);
  const rssFinal = await procStatus(core.pid);
  const coreStats = await admin.call('GET', '/stats', { bearer: core.adminToken }).catch((err) => ({ error: err.message }));
  admin.close();

  for (const w of workers) w.child.send({ cmd: 'close' });
  core.child.kill('SIGTERM');
  await new Promise((r) => core.child.once('exit', r));

  let profile;
  if (CPU_PROF) {
    const files = (await readdir(profileDir)).filter((f) => f.endsWith('.cpuprofile')).sort();
    const last = files.at(-1);
    if (last) profile = { file: join('bench-results/profiles', last), top: await summariseProfile(join(profileDir, last)) };
  }

  const result = {
    bench: 'core',
    at: new Date().toISOString(),
    machine: { cpus: availableParallelism(), model: cpus()[0]?.model, memBytes: totalmem(), node: process.version },
    settings: { agents: AGENTS, workers: WORKERS, durationMs: DURATION_MS, udpWindow: UDP_WINDOW, httpConnections: HTTP_CONNECTIONS, udpSockets: UDP_SOCKETS },
    enrollment,
    udp,
    http,
    coreRss: { idle: rssIdle, enrolled: rssEnrolled, afterUdp: rssAfterUdp, final: rssFinal },
    coreStats,
    targets: TARGETS,
    pass: {
      udp: udp.perSecond >= TARGETS.udpPerSecond,
      http: http.perSecond >= TARGETS.httpPerSecond,
      rss: rssFinal.vmHwm < TARGETS.rssBytes,
      enrolled: enrolled === AGENTS,
    },
    profile,
  };
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `core-${result.at.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);

  const mark = (ok) => (ok ? 'ok  ' : 'MISS');
  console.log('');
  console.log(`core benchmark: ${enrolled} agents, ${WORKERS} swarm process(es), ${availableParallelism()} CPUs`);
  console.log(`  enrollment      ${enrollment.perSecond} agents/s (${(enrollment.durationMs / 1000).toFixed(1)} s, errors ${enrollErrors})`);
  console.log(`  ${mark(result.pass.udp)} UDP heartbeats  ${udp.perSecond} /s processed  (target >= ${TARGETS.udpPerSecond})  p50 ${udp.latencyMs.p50} ms  p99 ${udp.latencyMs.p99} ms  timeouts ${udp.timeouts}  core CPU ${udp.coreCpuPct} %`);
  console.log(`  ${mark(result.pass.http)} HTTP heartbeats ${http.perSecond} /s processed  (target >= ${TARGETS.httpPerSecond})  p50 ${http.latencyMs.p50} ms  p99 ${http.latencyMs.p99} ms  errors ${http.errors}  core CPU ${http.coreCpuPct} %`);
  console.log(`  ${mark(result.pass.rss)} core memory    VmRSS ${mib(rssFinal.vmRss)}, VmHWM ${mib(rssFinal.vmHwm)} at ${enrolled} agents (target < 1024 MiB; ${mib(rssEnrolled.vmRss)} right after enrollment)`);
  if (profile) {
    console.log(`  core CPU profile (${profile.file}), self time:`);
    for (const p of profile.top) console.log(`    ${String(p.selfPct).padStart(5)} %  ${p.fn}`);
  }
  console.log(`  result: ${file}`);
  console.log(
    `bench:core ${JSON.stringify({
      agents: enrolled,
      enrollPerSec: enrollment.perSecond,
      udpHbPerSec: udp.perSecond,
      udpP99Ms: udp.latencyMs.p99,
      httpHbPerSec: http.perSecond,
      httpP99Ms: http.latencyMs.p99,
      coreVmRssMiB: Math.round(rssFinal.vmRss / 1024 ** 2),
      coreVmHwmMiB: Math.round(rssFinal.vmHwm / 1024 ** 2),
      pass: Object.values(result.pass).every(Boolean),
    })}`,
  );
  if (!Object.values(result.pass).every(Boolean)) process.exitCode = 1;
}

main()
  .catch((err) => {
    log('failed:', err);
    process.exitCode = 2;
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  })
  .finally(() => clearTimeout(guard));
