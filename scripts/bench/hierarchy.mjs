#!/usr/bin/env node
// Hierarchy benchmark (issue 17): one parent core and three child cores, each its own
// process, joined with real join tokens over their mutual-TLS link listeners; under each
// child a task server, a package server and a swarm of simulated agents
// (BENCH_AGENTS_PER_CHILD, default 25000), each in its own process. The baseline is the peer
// a user would pick instead of a hierarchy: ONE core with one task server and the same
// number of agents (three swarms), running the same job. Measures:
//   run      time from `job run --all` on the parent to every result back at the parent
//            (counts-only polls of the hierarchy run), vs the same job on the one core
//   package  a package (BENCH_PACKAGE_MIB, default 100) enabled on the parent, which has a
//            package server of its own (unless BENCH_PARENT_PS=0): that server stages it from
//            the parent core, then the children's package servers fetch it straight from it
//            (the parent's codebase handed down through GET /sources on the link listener; the
//            child cores hold no content). Overhead: time from ready on the parent's package
//            server to ready on every child's package server, minus the raw transfer: one plain
//            HTTP download (curl) of the same file from the parent's package server on loopback.
//            With BENCH_PARENT_PS=0 (the fallback: each child core fetches the content from the
//            parent's link listener, then its package server from it): time from enable, minus
//            a curl from the parent core's content API. Also printed: enable -> ready on every
//            child, and where each child's package server fetched from.
//   items    BENCH_ITEMS (10000) task definitions written on the parent while the child cores
//            are paused (SIGSTOP: the links carry nothing), then resumed: time from resume
//            until every child has all of them
//   lag      BENCH_LAG_RATE (100) changes/s on the parent for BENCH_LAG_SECONDS (20): p50/p99/max
//            from the write's request to the item answered by each child
// BENCH_CPU_PROF (e.g. child0 or parent,child0) writes a CPU profile of those cores (node
// --cpu-prof, at their exit) to BENCH_CPU_PROF_DIR (default $TMPDIR/outpost-cpu-prof).
// BENCH_PHASES (baseline,run,package,items,lag) picks phases. Every wait is bounded; the run
// stops by itself at BENCH_DEADLINE (45m), kills its children and removes its temp dir. Prints
// human lines and one `bench:hierarchy {json}` line, writes bench-results/hierarchy-<time>.json.
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDuration } from '@outpost/common';
import { writeResult } from './lib/files.mjs';
import { benchHarness } from './lib/harness.mjs';
import { clockTicksPerSecond, cpuTicks, loadavg } from './lib/proc.mjs';
import { attachAll } from './lib/task-server.mjs';
import { close, launcher, pct, stop, until } from './hierarchy/procs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const env = process.env;
const N = Number(env.BENCH_AGENTS_PER_CHILD ?? 25_000);
const CHILDREN = 3;
const PKG_BYTES = Number(env.BENCH_PACKAGE_MIB ?? 100) * 2 ** 20;
const ITEMS = Number(env.BENCH_ITEMS ?? 10_000);
const RATE = Number(env.BENCH_LAG_RATE ?? 100);
const LAG_S = Number(env.BENCH_LAG_SECONDS ?? 20);
const RUN_TIMEOUT_MS = parseDuration(env.BENCH_RUN_TIMEOUT ?? '420s');
const PHASE_TIMEOUT_MS = parseDuration(env.BENCH_PHASE_TIMEOUT ?? '120s');
const PHASES = (env.BENCH_PHASES ?? 'baseline,run,package,items,lag').split(',');
const PARENT_PS = env.BENCH_PARENT_PS !== '0';
const TARGETS = { runOverSingleMs: 15_000, packageOverheadMs: 3_000, itemsMs: 5_000 };

const tmp = await mkdtemp(join(env.BENCH_TMP ?? tmpdir(), 'outpost-bench-hier-'));
const { log, track } = benchHarness({ tag: 'bench:hierarchy', deadlineMs: parseDuration(env.BENCH_DEADLINE ?? '45m') });
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const L = launcher({ root, track, env: { ...env } });
const load = async () => (await loadavg()).map((x) => Math.round(x * 100) / 100);
const secs = (ms) => (ms === null || ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);
const result = { at: new Date().toISOString(), agentsPerChild: N, children: CHILDREN, packageBytes: PKG_BYTES, items: ITEMS, lagRate: RATE, lagSeconds: LAG_S, loadAvgAtStart: await load(), targets: TARGETS };
log(`temp ${tmp}; ${N} agents per child; load ${result.loadAvgAtStart.join(' ')}`);

const task = (name) => ({ name, kind: 'command', program: 'true' });
const JOB = { name: 'bench', steps: [{ task: 'noop' }, { task: 'noop2' }] };

/**
 * Enrolls the swarms and attaches them (tickle) until every agent is attached: a task
 * server looks up agents it does not know yet at a bounded rate (TASK_LOOKUP_LIMITED),
 * so a first attach of thousands leaves some out. Returns how many enrolled and attached
 * and how long it took.
 */
async function enrollSwarms(swarms, taskServers) {
  const t = Date.now();
  const enrolled = (await Promise.all(swarms.map((s) => s.call('enroll')))).reduce((a, e) => a + e.enrolled, 0);
  log(`enrolled ${enrolled} agents in ${secs(Date.now() - t)}`);
  // The task servers pull the new agents from their core at once (else on their next poll of the core).
  const known = await Promise.all(taskServers.map((ts) => ts.sync()));
  log(`task servers know ${known.join(', ')} agents`);
  const attached = await Promise.all(swarms.map(async (s) => (await attachAll(s.call, s.count, 'tickle')).attached));
  const total = attached.reduce((a, b) => a + b, 0);
  log(`attached ${total} agents; ${secs(Date.now() - t)} since enrolling began`);
  return { enrolled, attached: total, ms: Date.now() - t };
}

/** Arms every swarm for `job` (their agents answer the first run of it) and resolves once they listen. */
async function arm(swarms, job) {
  const done = swarms.map((s) => {
    const armed = s.call(null, {}, 'armed');
    return { armed, done: s.call('await', { job, timeoutMs: RUN_TIMEOUT_MS }) };
  });
  await Promise.all(done.map((d) => d.armed));
  return Promise.all(done.map((d) => d.done));
}

function fetchStats(results, t0) {
  const fetched = results.flatMap((r) => r.fetchedAt).filter((x) => x > 0).map((x) => x - t0).sort((a, b) => a - b);
  return { fetched: fetched.length, p50Ms: pct(fetched, 50), p99Ms: pct(fetched, 99), maxMs: fetched[fetched.length - 1] ?? null, errors: results.reduce((a, r) => ({ ...a, ...r.errors }), {}) };
}

const HZ = clockTicksPerSecond();
/**
 * CPU seconds each role used between `start()` and `stop()`: `procs` maps a role (core,
 * parent, children, task servers, swarms, package servers) to its processes. Says where a
 * run's time goes on a box where every process shares the same CPUs.
 */
function cpuMeter(procs) {
  const read = async () => Object.fromEntries(await Promise.all(Object.entries(procs).map(async ([role, ps]) => [role, (await Promise.all(ps.map((p) => cpuTicks(p.child.pid).catch(() => 0)))).reduce((a, b) => a + b, 0)])));
  let at;
  return {
    start: async () => (at = await read()),
    stop: async () => {
      const now = await read();
      return Object.fromEntries(Object.keys(now).map((k) => [k, Math.round(((now[k] - at[k]) / HZ) * 10) / 10]));
    },
  };
}
/** What a task server did: its tickles, its forwarding to the core, its syncs with the core. */
const tsStats = (s) => ({ tickles: s.tickles, outbox: s.outbox, sync: s.sync, link: s.link });
const cpuLine = (cpu) => Object.entries(cpu).map(([k, v]) => `${k} ${v} s`).join(', ');

// ------------------------------------------------------------------ baseline: one core, 3N agents
async function baseline() {
  const dir = join(tmp, 'single');
  const core = await L.core('single', join(dir, 'core'));
  const ts = await L.taskServer(core, join(dir, 'ts'));
  const tok = await core.api('POST', '/tokens', { for: 'agent', uses: N * CHILDREN });
  const swarms = [];
  for (let k = 0; k < CHILDREN; k++) swarms.push(await L.swarm(core, tok.token, N, `single${k}`));
  try {
    const enrolled = await enrollSwarms(swarms, [ts]);
    await core.api('POST', '/tasks', task('noop'));
    await core.api('POST', '/tasks', task('noop2'));
    await core.api('POST', '/jobs', JOB);
    await new Promise((r) => setTimeout(r, 1_000));
    const results = arm(swarms, JOB.name);
    await new Promise((r) => setTimeout(r, 300));
    const l0 = await load();
    const cpu = cpuMeter({ core: [core], taskServer: [ts], swarms });
    await cpu.start();
    const t0 = Date.now();
    const run = await core.api('POST', `/jobs/${JOB.name}/runs`, { all: true });
    const want = N * CHILDREN;
    let counts;
    const allMs = await until(
      async () => {
        counts = (await core.api('GET', '/runs')).items.find((r) => r.id === run.id)?.counts;
        return counts && counts.succeeded + counts.failed >= want ? Date.now() - t0 : 0;
      },
      { timeoutMs: RUN_TIMEOUT_MS, intervalMs: 100, what: 'every result on the single core' },
    ).catch(() => null);
    const cpuS = await cpu.stop();
    const taskServer = tsStats(await ts.stats());
    const fetched = fetchStats(await results, t0);
    const row = { agents: want, enrolled: enrolled.enrolled, attached: enrolled.attached, enrollMs: enrolled.ms, allResultsMs: allMs, counts, ...fetched, loadAvgBefore: l0, cpuS, taskServer };
    log(`single core, ${want} agents: every result in ${secs(allMs)} (fetched p50 ${fetched.p50Ms} ms, p99 ${fetched.p99Ms} ms, max ${fetched.maxMs} ms); CPU: ${cpuLine(cpuS)}`);
    return row;
  } finally {
    await Promise.all(swarms.map((s) => close(s, 'swarm')));
    await close(ts, 'ts');
    await stop(core.child);
    await rm(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ the hierarchy
async function hierarchy() {
  const dir = join(tmp, 'hier');
  const parent = await L.core('parent', join(dir, 'parent'), { name: 'hq', listen: { host: '127.0.0.1', port: 0 } });
  const children = await Promise.all(Array.from({ length: CHILDREN }, (_, i) => L.core(`child${i}`, join(dir, `child${i}`), { name: `region-${i}` })));
  const listener = (await parent.api('GET', '/hierarchy')).listener;
  for (const c of children) {
    const t = await parent.api('POST', '/hierarchy/tokens', { note: c.name });
    const j = await c.api('POST', '/hierarchy/join', { url: listener, token: t.token });
    c.id = (await c.api('GET', '/hierarchy')).core.id;
    log(`${c.name} (${c.id}) joined ${j.name} at ${listener}`);
  }
  const h = { parent, children, listener, swarms: [], taskServers: [], packageServers: [] };
  // The parent's own package server: the children's package servers stage packages from it.
  if (PARENT_PS) h.packageServers.push((h.parentPackageServer = await L.packageServer(parent, 'ps-hq', join(dir, 'ps-parent'))));
  for (const [i, c] of children.entries()) {
    h.taskServers.push(await L.taskServer(c, join(dir, `ts${i}`)));
    h.packageServers.push(await L.packageServer(c, `ps-${c.name}`, join(dir, `ps${i}`)));
  }
  return h;
}

/** Waits until every child has sent up all it has (its pending up entries 0) and has applied all the parent sent. */
async function quiet(h, what) {
  const t = Date.now();
  let stable = 0;
  await until(
    async () => {
      const st = await Promise.all(h.children.map((c) => c.api('GET', '/hierarchy')));
      const ok = st.every((s) => s.parent?.connected && s.parent.pending === 0 && s.parent.lag === 0);
      stable = ok ? stable + 1 : 0;
      return stable >= 3;
    },
    { timeoutMs: 300_000, intervalMs: 500, what: `the links quiet (${what})` },
  );
  log(`links quiet (${what}) after ${secs(Date.now() - t)}`);
}

async function runPhase(h) {
  const { parent, children } = h;
  for (const [i, c] of children.entries()) {
    const tok = await c.api('POST', '/tokens', { for: 'agent', uses: N });
    h.swarms.push(await L.swarm(c, tok.token, N, `c${i}`));
  }
  const enrolled = await enrollSwarms(h.swarms, h.taskServers);
  await parent.api('POST', '/tasks', task('noop'));
  await parent.api('POST', '/tasks', task('noop2'));
  await parent.api('POST', '/jobs', JOB);
  await until(async () => (await Promise.all(children.map((c) => c.api.try('GET', `/jobs/${JOB.name}`)))).every((r) => r.status === 200), { timeoutMs: PHASE_TIMEOUT_MS, what: 'the job on every child' });
  // The agents' summaries (N per child) go up first: the run starts on a quiet hierarchy.
  await quiet(h, 'agents summarised up');
  const results = arm(h.swarms, JOB.name);
  await new Promise((r) => setTimeout(r, 300));
  const l0 = await load();
  const cpu = cpuMeter({ parent: [parent], children, taskServers: h.taskServers, swarms: h.swarms, packageServers: h.packageServers });
  await cpu.start();
  const t0 = Date.now();
  const run = await parent.api('POST', '/hierarchy/runs', { job: JOB.name, all: true });
  const want = N * CHILDREN;
  const childDoneMs = children.map(() => null);
  let view;
  let polls = 0;
  const allMs = await until(
    async () => {
      await Promise.all(
        children.map(async (c, i) => {
          if (childDoneMs[i] !== null) return;
          const mine = (await c.api('GET', '/runs')).items.find((r) => r.id === `run_${run.id}`);
          if (mine && mine.counts.succeeded + mine.counts.failed >= N) childDoneMs[i] = Date.now() - t0;
        }),
      );
      view = await parent.api('GET', `/hierarchy/runs/${run.id}?agents=false`);
      polls++;
      const c = view.counts;
      return (c.succeeded ?? 0) + (c.failed ?? 0) >= want ? Date.now() - t0 : 0;
    },
    { timeoutMs: RUN_TIMEOUT_MS, intervalMs: 100, what: 'every result at the parent' },
  ).catch(() => null);
  const cpuS = await cpu.stop();
  const taskServers = (await Promise.all(h.taskServers.map((ts) => ts.stats()))).map(tsStats);
  const fetched = fetchStats(await results, t0);
  // What a poll costs at this size: counts only (from memory) and the whole view.
  let t = performance.now();
  await parent.api('GET', `/hierarchy/runs/${run.id}?agents=false`);
  const countsPollMs = Math.round((performance.now() - t) * 10) / 10;
  t = performance.now();
  const full = await parent.api('GET', `/hierarchy/runs/${run.id}`);
  const fullPollMs = Math.round(performance.now() - t);
  // What the links carried (since the children joined): bytes each way per child.
  const links = (await parent.api('GET', '/hierarchy')).children.map((c) => ({ name: c.name, bytesUp: c.bytes.up, bytesDown: c.bytes.down }));
  const row = { agents: want, enrolled: enrolled.enrolled, attached: enrolled.attached, enrollMs: enrolled.ms, allResultsMs: allMs, counts: view?.counts, cores: Object.values(view?.cores ?? {}), childLocalDoneMs: childDoneMs, countsOnlyPolls: polls, countsPollMs, fullPollMs, fullPollAgents: full.agents.length, links, ...fetched, loadAvgBefore: l0, cpuS, taskServers };
  log(`hierarchy, ${want} agents: every result at the parent in ${secs(allMs)}; each child's own run done at ${childDoneMs.map(secs).join(', ')}; poll: counts only ${countsPollMs} ms, whole view ${fullPollMs} ms`);
  log(`  CPU during the run: ${cpuLine(cpuS)}`);
  log(`  links since joining: up ${links.map((l) => `${(l.bytesUp / 2 ** 20).toFixed(1)} MiB`).join(', ')}; down ${links.map((l) => `${(l.bytesDown / 2 ** 20).toFixed(1)} MiB`).join(', ')}`);
  // The agents are not needed further: fewer processes competing for the CPU.
  await Promise.all(h.swarms.map((s) => close(s, 'swarm')));
  await Promise.all(h.taskServers.map((s) => close(s, 'ts')));
  return row;
}

/** Random bytes to `path`, returns their sha256. */
async function writeRandom(path, bytes) {
  const hash = createHash('sha256');
  const ws = createWriteStream(path);
  const chunk = Buffer.allocUnsafe(2 ** 20);
  for (let left = bytes; left > 0; left -= chunk.length) {
    randomFillSync(chunk);
    const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
    hash.update(part);
    if (!ws.write(part)) await new Promise((r) => ws.once('drain', r));
  }
  await new Promise((r) => ws.end(r));
  return hash.digest('hex');
}

const run = (cmd, args) =>
  new Promise((res, rej) => {
    const p = track(spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.once('error', rej);
    p.once('exit', (code) => (code === 0 ? res() : rej(new Error(`${cmd} exited ${code}: ${err}`))));
  });

async function packagePhase(h) {
  const { parent, children } = h;
  const pdir = join(tmp, 'pkg');
  await mkdir(pdir, { recursive: true });
  const file = join(pdir, 'big.bin');
  const sha256 = await writeRandom(file, PKG_BYTES);
  const pkg = await parent.api('POST', '/packages', { name: 'bench-big', version: '1', files: [{ path: 'big.bin', size: PKG_BYTES, sha256 }] });
  await parent.api('PUT', `/packages/${pkg.id}/files/big.bin`, createReadStream(file), { 'content-type': 'application/octet-stream' });
  await rm(file);
  // Raw: one plain HTTP download of the same bytes from the parent core on loopback (curl, to a file).
  await run('sync', []);
  let t = performance.now();
  await run('curl', ['-sS', '--fail', '-o', join(pdir, 'raw.bin'), '-H', `Authorization: Bearer ${parent.adminToken}`, `${parent.url}/api/v1/packages/${pkg.id}/files/big.bin`]);
  const rawMs = Math.round(performance.now() - t);
  await rm(join(pdir, 'raw.bin'));
  await run('sync', []);
  const l0 = await load();
  const t0 = Date.now();
  await parent.api('POST', `/packages/${pkg.id}/enable`, {});
  const per = children.map(() => ({ manifestMs: null, contentMs: null, enabledMs: null, readyMs: null }));
  const ms = (iso) => (iso ? Date.parse(iso) - t0 : null);
  let parentReadyMs = null;
  let parentCodebase;
  await until(
    async () => {
      if (PARENT_PS && parentReadyMs === null) {
        const v = await parent.api.try('GET', `/packages/${pkg.id}`);
        const s = v.status === 200 ? (v.body.servers ?? []).find((x) => x.state === 'ready') : undefined;
        if (s) {
          parentReadyMs = ms(s.readyAt);
          parentCodebase = s.codebase;
        }
      }
      const views = await Promise.all(children.map((c) => c.api.try('GET', `/packages/${pkg.id}`)));
      let ready = 0;
      views.forEach((v, i) => {
        if (v.status !== 200) return;
        const p = per[i];
        p.manifestMs ??= Date.now() - t0;
        p.contentMs = ms(v.body.readyAt);
        p.enabledMs = ms(v.body.enabledAt);
        const servers = v.body.servers ?? [];
        if (servers.length > 0 && servers.every((s) => s.state === 'ready')) {
          p.readyMs ??= Date.now() - t0;
          p.serverReadyAt = Math.max(...servers.map((s) => ms(s.readyAt) ?? 0));
          ready++;
        }
      });
      return ready === children.length;
    },
    { timeoutMs: PHASE_TIMEOUT_MS, intervalMs: 50, what: "the package ready on every child's package server" },
  ).catch((err) => log(String(err)));
  const readyMs = per.every((p) => p.readyMs !== null) ? Math.max(...per.map((p) => p.readyMs)) : null;
  // What the parent's package server sent to each child's, and the content each child core read over its link.
  const hq = h.parentPackageServer ? await (await fetch(`${h.parentPackageServer.url}/api/v1/stats`)).json() : undefined;
  const links = (await parent.api('GET', '/hierarchy')).children ?? [];
  for (const [i, ps] of h.packageServers.filter((x) => x !== h.parentPackageServer).entries()) {
    per[i].fromParentPackageServer = hq?.http?.bytesTo?.[ps.id] ?? 0;
    per[i].overLink = links.find((c) => c.id === children[i].id)?.bytes?.content ?? 0;
  }
  const linkContent = per.map((p) => p.overLink);
  // Raw from the parent's package server (where the children fetched from), once they are done.
  let rawPsMs = null;
  if (parentCodebase) {
    await run('sync', []);
    t = performance.now();
    await run('curl', ['-sS', '--fail', '-o', join(pdir, 'raw-ps.bin'), `${parentCodebase}/big.bin`]);
    rawPsMs = Math.round(performance.now() - t);
    await rm(join(pdir, 'raw-ps.bin'));
  }
  const childrenMs = readyMs !== null && parentReadyMs !== null ? readyMs - parentReadyMs : null;
  const overheadMs = PARENT_PS ? (childrenMs === null || rawPsMs === null ? null : childrenMs - rawPsMs) : readyMs === null ? null : readyMs - rawMs;
  const row = {
    bytes: PKG_BYTES,
    path: PARENT_PS ? "children's package servers from the parent's package server" : "fallback: child cores from the parent's link listener, their package servers from them",
    rawDownload: PARENT_PS ? "curl from the parent's package server (its codebase, loopback HTTP, to a file)" : 'curl from the parent core (GET /api/v1/packages/:id/files/big.bin, loopback HTTP, to a file)',
    rawMs: PARENT_PS ? rawPsMs : rawMs,
    rawCoreMs: rawMs,
    readyMs,
    parentReadyMs,
    childrenAfterParentMs: childrenMs,
    overheadMs,
    overheadFromEnableMs: readyMs === null ? null : readyMs - rawMs,
    parentServedTo: hq?.http?.bytesTo ?? null,
    linkContentBytes: linkContent,
    children: per,
    loadAvgBefore: l0,
  };
  log(`package ${PKG_BYTES / 2 ** 20} MiB (${row.path}): enable -> ready on every child's package server ${secs(readyMs)}; ready on the parent's package server ${secs(parentReadyMs)}, children ${secs(childrenMs)} after; raw ${secs(row.rawMs)} (${row.rawDownload}); overhead ${secs(overheadMs)}`);
  log(`  raw from the parent core ${secs(rawMs)}; enable -> ready minus that ${secs(row.overheadFromEnableMs)}; content over the links ${linkContent.join(', ')} bytes`);
  for (const [i, p] of per.entries()) log(`  ${children[i].name}: manifest ${secs(p.manifestMs)}, content on the child core ${secs(p.contentMs)}, enabled ${secs(p.enabledMs)}, ready on its package server ${secs(p.readyMs)}; bytes from the parent's package server ${p.fromParentPackageServer}, over the link ${p.overLink}`);
  return row;
}

/** Writes `count` items through `write(i)` with `concurrency` requests in flight. */
async function writeMany(count, concurrency, write) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await write(next++);
    }),
  );
}

async function itemsPhase(h) {
  const { parent, children } = h;
  await quiet(h, 'before the items');
  // Paused links: the child cores stop (SIGSTOP), so nothing crosses while the parent changes.
  for (const c of children) c.child.kill('SIGSTOP');
  let resumed = false;
  const resume = () => {
    if (resumed) return;
    resumed = true;
    for (const c of children) c.child.kill('SIGCONT');
  };
  let t0;
  const tw = Date.now();
  try {
    await writeMany(ITEMS, 16, (i) => parent.api('POST', '/tasks', task(`rep-${i}`)));
    await parent.api('POST', '/tasks', task('rep-last'));
  } finally {
    t0 = Date.now();
    resume();
  }
  const writeMs = t0 - tw;
  // The last write is the newest journal entry: a child that has it has every one before it.
  const perChild = await Promise.all(
    children.map((c) =>
      until(async () => ((await c.api.try('GET', '/tasks/rep-last')).status === 200 ? Date.now() - t0 : 0), { timeoutMs: PHASE_TIMEOUT_MS, intervalMs: 20, what: `the items on ${c.name}` }).catch(() => null),
    ),
  );
  const have = await Promise.all(children.map(async (c) => (await c.api('GET', '/tasks')).items.filter((t) => t.name.startsWith('rep-')).length));
  const allMs = perChild.includes(null) ? null : Math.max(...perChild);
  const status = await parent.api('GET', '/hierarchy');
  const row = { items: ITEMS + 1, writeMs, allMs, perChildMs: perChild, presentOnChildren: have, linksAfter: status.children.map((c) => ({ name: c.name, state: c.state, bytesDown: c.bytes.down })) };
  log(`items: ${ITEMS + 1} written on the parent in ${secs(writeMs)} with the links paused; on every child ${secs(allMs)} after resume (${perChild.map(secs).join(', ')}); present ${have.join(', ')}`);
  return row;
}

async function lagPhase(h) {
  const { parent, children } = h;
  await quiet(h, 'before the steady changes');
  const total = Math.round(RATE * LAG_S);
  const sentAt = new Array(total).fill(0);
  const doneAt = new Array(total).fill(0);
  const seen = children.map(() => new Array(total).fill(0));
  let writing = true;
  const pollers = children.map(async (c, ci) => {
    const end = Date.now() + LAG_S * 1_000 + PHASE_TIMEOUT_MS;
    let next = 0;
    while (next < total && Date.now() < end) {
      if (sentAt[next] === 0) {
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      const r = await c.api.try('GET', `/tasks/lag-${next}`);
      if (r.status === 200) seen[ci][next++] = Date.now();
      else await new Promise((res) => setTimeout(res, writing ? 3 : 10));
    }
  });
  const writes = [];
  const start = Date.now();
  for (let k = 0; k < total; k++) {
    const due = start + (k * 1_000) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sentAt[k] = Date.now();
    writes.push(parent.api('POST', '/tasks', task(`lag-${k}`)).then(() => (doneAt[k] = Date.now())));
  }
  await Promise.all(writes);
  const writeSeconds = (Date.now() - start) / 1000;
  writing = false;
  await Promise.all(pollers);
  const lags = children.map((_, ci) => seen[ci].map((s, k) => (s ? s - sentAt[k] : null)));
  const stats = (xs) => {
    const ok = xs.filter((x) => x !== null).sort((a, b) => a - b);
    return { n: ok.length, missing: xs.length - ok.length, p50Ms: pct(ok, 50), p99Ms: pct(ok, 99), maxMs: ok[ok.length - 1] ?? null };
  };
  const row = { changes: total, achievedRate: Math.round(total / writeSeconds), all: stats(lags.flat()), perChild: lags.map(stats), parentWrite: stats(doneAt.map((d, k) => (d ? d - sentAt[k] : null))) };
  log(`lag at ${row.achievedRate} changes/s for ${LAG_S} s: p50 ${row.all.p50Ms} ms, p99 ${row.all.p99Ms} ms, max ${row.all.maxMs} ms (missing ${row.all.missing}); the write itself on the parent p50 ${row.parentWrite.p50Ms} ms, p99 ${row.parentWrite.p99Ms} ms`);
  return row;
}

// ------------------------------------------------------------------ main
const phases = {};
async function phase(name, fn) {
  if (!PHASES.includes(name)) return;
  try {
    phases[name] = await fn();
  } catch (err) {
    log(`${name} failed: ${err?.stack ?? err}`);
    phases[name] = { error: String(err?.message ?? err) };
  }
  phases[name].loadAvgAfter = await load();
}

await phase('baseline', baseline);
if (PHASES.some((p) => p !== 'baseline')) {
  let h;
  try {
    h = await hierarchy();
    await phase('run', () => runPhase(h));
    await phase('package', () => packagePhase(h));
    await phase('items', () => itemsPhase(h));
    await phase('lag', () => lagPhase(h));
  } catch (err) {
    log(`the hierarchy could not be set up: ${err?.stack ?? err}`);
    result.error = String(err?.message ?? err);
  } finally {
    if (h) {
      await Promise.all([...h.swarms.map((s) => close(s, 'swarm')), ...h.taskServers.map((s) => close(s, 'ts'))]);
      await Promise.all([...h.packageServers, ...h.children, h.parent].map((p) => stop(p.child)));
    }
  }
}

const b = phases.baseline?.allResultsMs;
const r = phases.run?.allResultsMs;
const summary = {
  runSingleCoreMs: b ?? null,
  runHierarchyMs: r ?? null,
  runDifferenceMs: b != null && r != null ? r - b : null,
  runRatio: b != null && r != null ? Math.round((r / b) * 100) / 100 : null,
  packageOverheadMs: phases.package?.overheadMs ?? null,
  itemsMs: phases.items?.allMs ?? null,
  lagP50Ms: phases.lag?.all?.p50Ms ?? null,
  lagP99Ms: phases.lag?.all?.p99Ms ?? null,
  lagMaxMs: phases.lag?.all?.maxMs ?? null,
};
summary.met = {
  run: summary.runDifferenceMs === null ? null : summary.runDifferenceMs <= TARGETS.runOverSingleMs,
  package: summary.packageOverheadMs === null ? null : summary.packageOverheadMs < TARGETS.packageOverheadMs,
  items: summary.itemsMs === null ? null : summary.itemsMs < TARGETS.itemsMs,
};
Object.assign(result, { summary, phases, loadAvgAtEnd: await load() });
const file = await writeResult(root, 'hierarchy', result);
console.log('');
console.log(`job on ${N * CHILDREN} agents, results at the parent: hierarchy ${secs(r)} vs one core ${secs(b)}: difference ${secs(summary.runDifferenceMs)}, ratio ${summary.runRatio ?? '-'} (target: within 15 s)`);
console.log(`package ${PKG_BYTES / 2 ** 20} MiB (${phases.package?.path ?? '-'}): enable -> ready on every child's package server ${secs(phases.package?.readyMs)}, ready on the parent's package server ${secs(phases.package?.parentReadyMs)}, raw download ${secs(phases.package?.rawMs)}, overhead ${secs(summary.packageOverheadMs)} (target < 3 s)`);
console.log(`${ITEMS} changed items parent -> children after resume: ${secs(summary.itemsMs)} (target < 5 s)`);
console.log(`lag under ${RATE} changes/s: p50 ${summary.lagP50Ms} ms, p99 ${summary.lagP99Ms} ms, max ${summary.lagMaxMs} ms`);
console.log(`load average start ${result.loadAvgAtStart.join(' ')}, end ${result.loadAvgAtEnd.join(' ')}; result ${file}`);
console.log(`bench:hierarchy ${JSON.stringify({ agentsPerChild: N, ...summary, loadAvg: result.loadAvgAtEnd })}`);
process.exit(0);
