#!/usr/bin/env node
// Task service benchmark (issue 4): one core, one task server and simulated agents on
// loopback, each in its own process (the swarm in BENCH_SWARMS processes). For each
// agent count (BENCH_AGENTS, default 15000,50000) and mode (BENCH_MODES, default
// tickle,ws,poll): time from `job run` until 50 %, 99 % and 100 % of the agents fetched
// their work, until every status is recorded in the core, lost and duplicated events,
// task server CPU seconds and peak RSS. WebSocket mode is skipped above BENCH_WS_MAX
// agents on one process (open files are capped at 20,000 per process here; the task
// server holds one socket per agent): above it, the task server runs for that mode with
// ceil(agents / 17000) HTTP/WebSocket workers (node:cluster; BENCH_TS_WORKERS sets the
// workers for every mode). CPU and RSS are summed over the task server's processes. Poll-only uses BENCH_POLL_INTERVAL (20s) and prints what the
// default 30 min interval would give. Prints one `bench:tasks {json}` line and writes
// bench-results/tasks-<time>.json. Every phase is bounded in time.
import { fork, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseDuration } from '@outpost/common';
import { attachAll, syncTaskServer } from './lib/task-server.mjs';
import { ipc } from './lib/ipc.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const env = process.env;
const SIZES = (env.BENCH_AGENTS ?? '15000,50000').split(',').map(Number);
const MODES = (env.BENCH_MODES ?? 'tickle,ws,poll').split(',');
const SWARMS = Number(env.BENCH_SWARMS ?? 3);
const WS_MAX = Number(env.BENCH_WS_MAX ?? 18_000);
const TICKLE_RATE = Number(env.BENCH_TICKLE_RATE ?? 25_000);
const HTTP_CONNECTIONS = Number(env.BENCH_HTTP_CONNECTIONS ?? 96);
const POLL_INTERVAL = env.BENCH_POLL_INTERVAL ?? '20s';
const RUN_TIMEOUT_MS = parseDuration(env.BENCH_RUN_TIMEOUT ?? '120s');
const DEADLINE_MS = 40 * 60_000;
const log = (...a) => console.error('[bench:tasks]', ...a);
const children = [];
setTimeout(() => {
  log('did not finish within the deadline; stopping');
  for (const c of children) c.kill('SIGKILL');
  process.exit(2);
}, DEADLINE_MS).unref();

async function cpuMs1(pid) {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}
async function rss1(pid) {
  const t = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(t)?.[1] ?? 0) * 1024;
}
const sumOver = (f) => async (pids) => (await Promise.all(pids.map((p) => f(p).catch(() => 0)))).reduce((a, b) => a + b, 0);
const cpuMs = sumOver(cpuMs1);
const rss = sumOver(rss1);
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

async function startCore() {
  const child = spawn(process.execPath, [join(root, 'scripts/bench/core/run-core.mjs')], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...env, BENCH_CORE_LOG: 'error' } });
  children.push(child);
  const line = await new Promise((res, rej) => {
    createInterface({ input: child.stdout }).once('line', res);
    child.once('exit', (c) => rej(new Error(`core exited ${c}`)));
  });
  return { ...JSON.parse(line), child };
}

async function api(core, method, path, body) {
  const res = await fetch(`${core.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${core.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function benchSize(n) {
  const tmp = await mkdtemp(join(env.BENCH_TMP ?? tmpdir(), 'outpost-bench-tasks-'));
  const core = await startCore();
  const ssTok = await api(core, 'POST', '/tokens', { for: 'site-server', grant: { services: { task: true }, addresses: ['127.0.0.1'] } });
  // A fixed port: the task server is restarted when a mode needs another worker count, and
  // agents keep the URL the core gave them.
  const probe = createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const tsPort = probe.address().port;
  await new Promise((r) => probe.close(r));
  let ts;
  let tsInfo;
  let tsWorkers = -1;
  const startTs = async (workers) => {
    if (ts && workers === tsWorkers) return;
    if (ts) {
      ts.send('stop');
      await new Promise((r) => ts.once('exit', r));
    }
    ts = fork(join(root, 'scripts/bench/tasks/ts-child.mjs'), [JSON.stringify({ coreUrl: core.url, enrollToken: ssTok.token, dataDir: join(tmp, 'ts'), tickleRate: TICKLE_RATE, pollInterval: POLL_INTERVAL, workers, port: tsPort })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: env.BENCH_TS_PROF ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_TS_PROF}`] : [] });
    children.push(ts);
    tsInfo = await new Promise((res) => ts.once('message', res));
    tsWorkers = workers;
  };
  const workersFor = (mode) => (env.BENCH_TS_WORKERS !== undefined ? Number(env.BENCH_TS_WORKERS) : mode === 'ws' && n > WS_MAX ? Math.ceil(n / 17_000) : 0);
  await startTs(workersFor(MODES[0]));
  const agentTok = await api(core, 'POST', '/tokens', { for: 'agent', uses: n });
  const per = Math.ceil(n / SWARMS);
  const swarms = [];
  for (let k = 0; k < SWARMS && k * per < n; k++) {
    const addrs = Array.from({ length: 8 }, (_, j) => `127.0.${k + 1}.${j + 2}`);
    const c = fork(join(root, 'scripts/bench/tasks/swarm-child.mjs'), [JSON.stringify({ coreUrl: core.url, enrollToken: agentTok.token, count: Math.min(per, n - k * per), firstIndex: k * per, namePrefix: `b${n}`, concurrency: 32, httpConnections: HTTP_CONNECTIONS, udpSockets: 8, localAddresses: addrs })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(c);
    const call = ipc(c);
    await call(null, {}, 'ready');
    swarms.push({ child: c, call });
  }
  let t = Date.now();
  const enrolled = await Promise.all(swarms.map((s) => s.call('enroll')));
  log(`${n}: enrolled ${enrolled.reduce((a, e) => a + e.enrolled, 0)} agents in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  await api(core, 'POST', '/tasks', { name: 'noop', kind: 'command', program: 'true' });
  await api(core, 'POST', '/tasks', { name: 'noop2', kind: 'command', program: 'true' });
  const rows = [];
  for (const mode of MODES) {
    const workers = workersFor(mode);
    if (mode === 'ws' && n / Math.max(1, workers) > WS_MAX) {
      rows.push({ agents: n, mode, skipped: `more than ${WS_MAX} WebSockets per task-server process (open files capped at 20,000 per process here)` });
      log(`${n} ${mode}: skipped`);
      continue;
    }
    await startTs(workers);
    const job = `bench-${mode}-${n}`;
    await api(core, 'POST', '/jobs', { name: job, steps: [{ task: 'noop' }, { task: 'noop2' }] });
    t = Date.now();
    // The task server pulls the new agents now, then every swarm attaches until all are.
    await syncTaskServer(ts);
    const att = await Promise.all(swarms.map((s, k) => attachAll(s.call, Math.min(per, n - k * per), mode)));
    log(`${n} ${mode}: attached ${att.reduce((a, x) => a + x.attached, 0)} in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, 1_000));
    const statsBefore = (await api(core, 'GET', '/stats')).tasks;
    const others = [core.child.pid, ...swarms.map((s) => s.child.pid)];
    const [coreCpu0, swarmCpu0] = [await cpuMs([core.child.pid]), await cpuMs(others.slice(1))];
    const cpu0 = await cpuMs(tsInfo.pids);
    let peak = await rss(tsInfo.pids);
    const sampler = setInterval(() => void rss(tsInfo.pids).then((v) => (peak = Math.max(peak, v))).catch(() => undefined), 100);
    const results = Promise.all(swarms.map(async (s) => {
      const armed = s.call(null, {}, 'armed');
      const done = s.call('await', { job, timeoutMs: RUN_TIMEOUT_MS });
      await armed;
      return done;
    }));
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const run = await api(core, 'POST', `/jobs/${job}/runs`, { all: true });
    const res = await results;
    const fetched = res.flatMap((r) => r.fetchedAt).filter((x) => x > 0).map((x) => x - t0).sort((a, b) => a - b);
    let show;
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    for (;;) {
      show = await api(core, 'GET', `/runs/${run.id}`);
      if (show.counts.succeeded + show.counts.failed >= n || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const recordedMs = Date.now() - t0;
    clearInterval(sampler);
    const cpu1 = await cpuMs(tsInfo.pids);
    const [coreCpu1, swarmCpu1] = [await cpuMs([core.child.pid]), await cpuMs(others.slice(1))];
    const statsAfter = (await api(core, 'GET', '/stats')).tasks;
    const tsStats = await new Promise((r) => {
      ts.once('message', (m) => r(m.stats));
      ts.send('stats');
    });
    const row = {
      agents: n,
      mode,
      taskServerWorkers: workers,
      fetched: fetched.length,
      p50Ms: pct(fetched, 50),
      p99Ms: pct(fetched, 99),
      p100Ms: fetched[fetched.length - 1],
      allRecordedMs: show.counts.succeeded >= n ? recordedMs : null,
      recorded: show.counts.succeeded,
      lost: n - show.counts.succeeded,
      duplicatedAtCore: statsAfter.duplicates - statsBefore.duplicates,
      duplicatesDroppedByTaskServer: tsStats.outbox.duplicates,
      taskServerTickles: tsStats.tickles,
      taskServerCpuS: (cpu1 - cpu0) / 1000,
      taskServerPeakRssMiB: Math.round(peak / 2 ** 20),
      coreCpuS: (coreCpu1 - coreCpu0) / 1000,
      swarmCpuS: (swarmCpu1 - swarmCpu0) / 1000,
      loadAvg1: Math.round(loadavg()[0] * 10) / 10,
      hops: show.hops,
      via: show.via,
      swarmErrors: res.reduce((a, r) => ({ ...a, ...r.errors }), {}),
    };
    rows.push(row);
    log(`${n} ${mode}: fetched 50% ${row.p50Ms} ms, 99% ${row.p99Ms} ms, 100% ${row.p100Ms} ms; all recorded ${row.allRecordedMs} ms; lost ${row.lost}; dup ${row.duplicatedAtCore}; ts cpu ${row.taskServerCpuS} s, peak rss ${row.taskServerPeakRssMiB} MiB; core cpu ${row.coreCpuS} s, swarm cpu ${row.swarmCpuS} s; load ${row.loadAvg1}`);
  }
  for (const s of swarms) await s.call('close').catch(() => undefined);
  ts.send('stop');
  await new Promise((r) => ts.once('exit', r));
  core.child.kill('SIGTERM');
  await new Promise((r) => core.child.once('exit', r));
  await rm(tmp, { recursive: true, force: true });
  return rows;
}

const all = [];
for (const n of SIZES) all.push(...(await benchSize(n)));
const defaultPollS = 1800;
console.log('\nagents  mode    fetched p50/p99/100% (ms)   all recorded (ms)  lost  dup  ts cpu (s)  ts peak rss (MiB)  ts workers');
for (const r of all) {
  if (r.skipped) {
    console.log(`${String(r.agents).padEnd(7)} ${r.mode.padEnd(7)} skipped: ${r.skipped}`);
    continue;
  }
  console.log(`${String(r.agents).padEnd(7)} ${r.mode.padEnd(7)} ${`${r.p50Ms}/${r.p99Ms}/${r.p100Ms}`.padEnd(27)} ${String(r.allRecordedMs).padEnd(18)} ${String(r.lost).padEnd(5)} ${String(r.duplicatedAtCore).padEnd(4)} ${String(r.taskServerCpuS).padEnd(11)} ${String(r.taskServerPeakRssMiB).padEnd(18)} ${r.taskServerWorkers}`);
}
console.log(`poll-only measured with a ${POLL_INTERVAL} interval; with the default 30 min interval the same run takes up to ~${defaultPollS} s until 100 % fetched (server-assigned slots spread evenly).`);
const summary = { at: new Date().toISOString(), tickleRate: TICKLE_RATE, pollInterval: POLL_INTERVAL, swarms: SWARMS, rows: all };
console.log(`bench:tasks ${JSON.stringify({ rows: all.map(({ hops: _h, ...r }) => r) })}`);
await mkdir(join(root, 'bench-results'), { recursive: true });
await writeFile(join(root, 'bench-results', `tasks-${summary.at.replace(/[:.]/g, '-')}.json`), `${JSON.stringify(summary, null, 2)}\n`);
process.exit(0);
