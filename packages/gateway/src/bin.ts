#!/usr/bin/env node
import cluster from 'node:cluster';
import { createLogger, isOutpostError, readConfigFile, applyEnvOverrides, validateConfig, type Logger } from '@outpost/common';
import { gatewayConfigSchema } from './config.js';

/**
 * V8 flags for workers: a 1 MiB semi-space (the young generation of a relay is small and
 * short-lived; the default lets it grow to 3 × 16 MiB per process) and a cap on the old
 * generation. Flags already given (execArgv, NODE_OPTIONS) win.
 */
const WORKER_V8_FLAGS = ['--max-semi-space-size=1', '--max-old-space-size=1536'];

function workerExecArgv(): string[] {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].filter(Boolean);
  const has = (flag: string): boolean => given.some((a) => a.replace(/_/g, '-').startsWith(flag.split('=')[0]!));
  return [...process.execArgv, ...WORKER_V8_FLAGS.filter((f) => !has(f))];
}

const untilSignal = (): Promise<string> =>
  new Promise((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });

/**
 * The primary of `workers` > 1: forks the first worker and waits until it is ready (it
 * enrolls with linked cores and writes the identities the others then read), then the
 * rest; restarts a worker that dies (at most 10 a minute); SIGHUP is passed on, SIGTERM
 * stops them all (bounded: 20 s, then SIGKILL).
 */
async function primary(workers: number, log: Logger): Promise<number> {
  let stopping = false;
  const restarts: number[] = [];
  cluster.setupPrimary({ execArgv: workerExecArgv() });
  const fork = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork();
      w.on('message', (m: { t?: string }) => {
        if (m?.t === 'ready') resolve();
      });
      w.once('exit', (code) => reject(new Error(`gateway worker exited (${code}) before it was ready`)));
    });
  cluster.on('exit', (w, code, signal) => {
    if (stopping) return;
    const now = Date.now();
    while (restarts.length > 0 && restarts[0]! < now - 60_000) restarts.shift();
    log.error({ worker: w.id, code, signal }, 'gateway worker died');
    if (restarts.length >= 10) {
      log.fatal('gateway workers keep dying; giving up');
      process.exit(1);
    }
    restarts.push(now);
    fork().catch((err: unknown) => log.error({ err }, 'restarting a gateway worker failed'));
  });
  await fork();
  await Promise.all(Array.from({ length: workers - 1 }, () => fork()));
  log.info({ workers }, 'gateway workers ready');
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

/** `outpost-gateway --config FILE`: the `gateway:` section of FILE. SIGHUP reloads, SIGTERM/SIGINT stop. */
async function main(argv: string[]): Promise<number> {
  const i = argv.indexOf('--config');
  const file = i >= 0 ? argv[i + 1] : undefined;
  if (!file) {
    process.stderr.write('usage: outpost-gateway --config FILE\n');
    return 2;
  }
  const raw = applyEnvOverrides(await readConfigFile(file), process.env);
  const config = validateConfig(gatewayConfigSchema, raw.gateway ?? {}, { file: `${file} (gateway)` });
  const logger = createLogger({ base: { service: 'gateway', ...(cluster.isWorker ? { worker: cluster.worker?.id } : {}) } });
  if (config.workers > 1 && cluster.isPrimary) return primary(config.workers, logger);
  // Only workers (or a single process) load the gateway itself: the primary stays small.
  const { createGateway } = await import('./gateway.js');
  const gw = createGateway(config, { logger });
  await gw.start();
  process.send?.({ t: 'ready', port: gw.port });
  process.on('SIGHUP', () => void gw.reload().catch((err: unknown) => logger.error({ err }, 'reload failed')));
  await untilSignal();
  await gw.stop();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${isOutpostError(err) ? `${err.code}: ` : ''}${(err as Error).message}\n`);
    process.exit(1);
  },
);
