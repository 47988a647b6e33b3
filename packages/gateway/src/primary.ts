import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { applyEnvOverrides, readConfigFile } from '@outpost/common/config';
import type { GatewayConfig } from './config.js';
import { CONFIG_FROM_PRIMARY, configAnswer, isConfigRequest, ReportHub } from './workers.js';

/**
 * The primary of `outpost-gateway` with `workers` > 1. It loads nothing but Node's
 * built-ins and common's config reader (`yaml`): it only forks, watches and signals the
 * workers and passes their connection tables around, so it stays near Node's own
 * footprint (~40 MiB RSS instead of ~78 MiB with the gateway's dependencies loaded).
 * The workers validate the config; the first one's failure is the primary's.
 */

/**
 * V8 flags for workers: a 1 MiB semi-space (the young generation of a relay is small and
 * short-lived; the default lets it grow to 3 × 16 MiB per process) and a cap on the old
 * generation. Flags already given (execArgv, NODE_OPTIONS) win.
 */
const WORKER_V8_FLAGS = ['--max-semi-space-size=1', '--max-old-space-size=1536'];

/**
 * The gateway's OpenSSL config (openssl.cnf next to package.json): one TLS 1.3 session
 * ticket per handshake instead of two, ~13 KiB less per idle tunnel (see the file).
 */
export const WORKER_OPENSSL_CONFIG = fileURLToPath(new URL('../openssl.cnf', import.meta.url));

/**
 * Node flags for workers: the primary's own, {@link WORKER_V8_FLAGS} and
 * `--openssl-config=`{@link WORKER_OPENSSL_CONFIG}, each unless already given (execArgv,
 * NODE_OPTIONS; for OpenSSL also the `OPENSSL_CONF` variable or
 * `--openssl-shared-config`: an operator's OpenSSL config wins).
 */
export function workerExecArgv(execArgv: readonly string[] = process.execArgv, env: NodeJS.ProcessEnv = process.env): string[] {
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].filter(Boolean);
  const has = (flag: string): boolean => given.some((a) => a.replace(/_/g, '-').startsWith(flag.split('=')[0]!));
  const openssl = env.OPENSSL_CONF !== undefined || has('--openssl-config') || has('--openssl-shared-config') ? [] : [`--openssl-config=${WORKER_OPENSSL_CONFIG}`];
  return [...execArgv, ...WORKER_V8_FLAGS.filter((f) => !has(f)), ...openssl];
}

/**
 * `gateway.workers` as the file and `OUTPOST_GATEWAY__WORKERS` give it, unvalidated (a
 * bad value is the workers' to report); 1 when absent or unreadable here.
 */
export async function rawWorkers(file: string, env: NodeJS.ProcessEnv): Promise<number> {
  try {
    const n = (applyEnvOverrides(await readConfigFile(file), env).gateway as { workers?: unknown } | undefined)?.workers;
    return typeof n === 'number' && Number.isInteger(n) && n > 1 ? n : 1;
  } catch {
    return 1;
  }
}

/** One JSON log line on stderr, in the shape pino writes (the primary has no pino). */
function log(level: 'info' | 'error' | 'fatal', fields: Record<string, unknown>, msg: string): void {
  const n = { info: 30, error: 50, fatal: 60 }[level];
  process.stderr.write(`${JSON.stringify({ level: n, time: new Date().toISOString(), pid: process.pid, service: 'gateway', ...fields, msg })}\n`);
}

/** Resolves with the first of SIGTERM or SIGINT. */
export const untilSignal = (): Promise<string> =>
  new Promise((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });

/**
 * Forks the first worker and waits until it is ready (it validates the config, enrolls
 * with linked cores and writes the identities the others then read), then the rest,
 * which take the config it validated from here instead of validating it again;
 * restarts a worker that dies (at most 10 a minute); SIGHUP is passed on, SIGTERM stops
 * them all (bounded: 20 s, then SIGKILL). Worker connection tables meet here, so the
 * cores get one per gateway (workers.ts).
 */
export async function runPrimary(workers: number): Promise<number> {
  let stopping = false;
  const restarts: number[] = [];
  cluster.setupPrimary({ execArgv: workerExecArgv() });
  const hub = new ReportHub(() => Object.values(cluster.workers ?? {}).flatMap((w) => (w && !w.isDead() ? [w.id] : [])));
  let validated: GatewayConfig | undefined;
  cluster.on('message', (w, m: unknown) => {
    if (isConfigRequest(m)) w.send(configAnswer(validated));
    else hub.handle(w, m);
  });
  const fork = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork(validated ? { [CONFIG_FROM_PRIMARY]: '1' } : {});
      w.on('message', (m: { t?: string; config?: GatewayConfig }) => {
        if (m?.t !== 'ready') return;
        validated ??= m.config;
        resolve();
      });
      w.once('exit', (code) => reject(new Error(`gateway worker exited (${code}) before it was ready`)));
    });
  cluster.on('exit', (w, code, signal) => {
    if (stopping) return;
    const now = Date.now();
    while (restarts.length > 0 && restarts[0]! < now - 60_000) restarts.shift();
    log('error', { worker: w.id, code, signal }, 'gateway worker died');
    if (restarts.length >= 10) {
      log('fatal', {}, 'gateway workers keep dying; giving up');
      process.exit(1);
    }
    restarts.push(now);
    fork().catch((err: unknown) => log('error', { err: (err as Error).message }, 'restarting a gateway worker failed'));
  });
  try {
    await fork();
  } catch {
    // The worker printed why (a bad config, an unreachable core): its failure is ours.
    stopping = true;
    return 1;
  }
  await Promise.all(Array.from({ length: workers - 1 }, () => fork()));
  log('info', { workers }, 'gateway workers ready');
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });
  await untilSignal();
  stopping = true;
  const all = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
  await Promise.race([
    Promise.all(all.map((w) => new Promise<void>((r) => (w.isDead() ? r() : (w.once('exit', () => r()), w.process.kill('SIGTERM')))))),
    new Promise<void>((r) => setTimeout(r, 20_000).unref()),
  ]);
  for (const w of all) if (!w.isDead()) w.process.kill('SIGKILL');
  return 0;
}
