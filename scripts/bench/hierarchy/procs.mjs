// The processes of bench:hierarchy and how the benchmark talks to them: cores
// (core-proc.mjs), task servers and swarms (the bench:tasks children), package servers
// (ps-proc.mjs), the admin API, and bounded waits. Every child is tracked by the harness,
// so it is killed however the run ends.
import { fork, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { stopChild } from '../lib/harness.mjs';
import { ipc } from '../lib/ipc.mjs';
import { syncTaskServer } from '../lib/task-server.mjs';

/** Waits until `fn()` is truthy (returns it), checking every `intervalMs`; throws after `timeoutMs`. */
export async function until(fn, { timeoutMs, intervalMs = 100, what }) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The admin API of a core: `api(method, path, body?)` → parsed JSON; throws on a non-2xx. `try` answers {status, body} instead. */
export function adminApi(core) {
  const call = async (method, path, body, headers = {}) => {
    const raw = body !== undefined && (Buffer.isBuffer(body) || typeof body.pipe === 'function');
    const res = await fetch(`${core.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${core.adminToken}`, ...(body !== undefined && !raw ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: raw ? body : JSON.stringify(body), duplex: 'half' } : {}),
      signal: AbortSignal.timeout(120_000),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const api = async (method, path, body, headers) => {
    const r = await call(method, path, body, headers);
    if (r.status < 200 || r.status > 299) throw new Error(`${core.name} ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  api.try = call;
  return api;
}

/** One line of JSON a child prints on stdout when ready. */
function firstLine(child, name, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name} not ready in ${timeoutMs} ms`)), timeoutMs);
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(t);
      resolve(JSON.parse(line));
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${name} exited (${code}) before it was ready`));
    });
  });
}

/** Node flags for core `name`: a CPU profile (--cpu-prof, written at exit) when BENCH_CPU_PROF names it. */
function cpuProf(env, name) {
  const names = (env.BENCH_CPU_PROF ?? '').split(',');
  return names.includes(name) ? ['--cpu-prof', '--cpu-prof-dir', env.BENCH_CPU_PROF_DIR ?? join(tmpdir(), 'outpost-cpu-prof')] : [];
}

/** Starts the processes of one benchmark (`track`: the harness's, so they are killed at the end). */
export function launcher({ root, track, env }) {
  const node = process.execPath;
  return {
    async core(name, dataDir, hierarchy) {
      const child = track(spawn(node, [...cpuProf(env, name), join(root, 'scripts/bench/hierarchy/core-proc.mjs'), JSON.stringify({ name, dataDir, hierarchy })], { stdio: ['ignore', 'pipe', 'inherit'], env }));
      const info = await firstLine(child, `core ${name}`, 60_000);
      const core = { ...info, name, child };
      core.api = adminApi(core);
      return core;
    },
    /** A task server of `core` (BENCH_CPU_PROF names it by the basename of `dataDir`: ts, ts0…). */
    async taskServer(core, dataDir) {
      const tok = await core.api('POST', '/tokens', { for: 'site-server', grant: { services: { task: true }, addresses: ['127.0.0.1'] } });
      const child = track(fork(join(root, 'scripts/bench/tasks/ts-child.mjs'), [JSON.stringify({ coreUrl: core.url, enrollToken: tok.token, dataDir, tickleRate: Number(env.BENCH_TICKLE_RATE ?? 25_000), pollInterval: '20s', workers: 0 })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env, execArgv: cpuProf(env, basename(dataDir)) }));
      const info = await new Promise((res, rej) => {
        child.once('message', res);
        child.once('exit', (c) => rej(new Error(`task server of ${core.name} exited ${c}`)));
      });
      const stats = () =>
        new Promise((res, rej) => {
          const t = setTimeout(() => rej(new Error('no stats from the task server')), 10_000);
          const on = (m) => {
            if (!m.stats || m.synced) return;
            child.off('message', on);
            clearTimeout(t);
            res(m.stats);
          };
          child.on('message', on);
          child.send('stats');
        });
      /** Pulls the agents assigned to it from the core now; resolves with how many it knows. */
      /** Pulls the agents assigned to it from the core now; resolves with how many it knows. */
      const sync = () => syncTaskServer(child);
      return { ...info, child, stats, sync };
    },
    async packageServer(core, name, dataDir) {
      const tok = await core.api('POST', '/tokens', { for: 'site-server', grant: { services: { package: { constrained: false } }, addresses: ['127.0.0.1'] } });
      const config = { name, coreUrl: core.url, dataDir, enrollToken: tok.token, http: { host: '127.0.0.1', port: 0 }, tickle: { host: '127.0.0.1', port: 0 }, reserveBytes: 0, watchStore: false };
      const child = track(spawn(node, [join(root, 'scripts/bench/hierarchy/ps-proc.mjs'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...env, MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? '2' } }));
      return { ...(await firstLine(child, `package server ${name}`, 60_000)), child };
    },
    /** A swarm of `count` simulated agents enrolling with `core` (its own process; BENCH_CPU_PROF names it by `prefix`), ready for commands. */
    async swarm(core, token, count, prefix) {
      const o = { coreUrl: core.url, enrollToken: token, count, firstIndex: 0, namePrefix: prefix, concurrency: 32, httpConnections: Number(env.BENCH_HTTP_CONNECTIONS ?? 96), udpSockets: 8 };
      const child = track(fork(join(root, 'scripts/bench/tasks/swarm-child.mjs'), [JSON.stringify(o)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env, execArgv: cpuProf(env, prefix) }));
      const call = ipc(child);
      await call(null, {}, 'ready');
      return { child, call, count };
    },
  };
}

/** Stops a process (SIGTERM, SIGKILL after 10 s) and waits for it. */
export const stop = (child, signal = 'SIGTERM') => stopChild(child, signal, 10_000);

/** Stops a forked bench:tasks child politely (its 'close'/'stop' message), then by signal. */
export async function close(proc, how) {
  if (!proc || proc.child.exitCode !== null) return;
  const gone = new Promise((r) => proc.child.once('exit', r));
  try {
    if (how === 'swarm') await Promise.race([proc.call('close'), new Promise((r) => setTimeout(r, 10_000))]);
    else proc.child.send('stop');
  } catch {
    // exited already
  }
  await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
  await stop(proc.child, 'SIGKILL');
}

export const pct = (sorted, p) => (sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]);
