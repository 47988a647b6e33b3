#!/usr/bin/env node
import cluster from 'node:cluster';
import type { GatewayConfig } from './config.js';
import { isOutpostError } from '@outpost/common/errors';
import { usePrivateUmask } from '@outpost/common/data-dir';
import { rawWorkers, runPrimary, untilSignal } from './primary.js';
import { CONFIG_FROM_PRIMARY, configFromPrimary, workerPeers } from './workers.js';

/**
 * `outpost-gateway --config FILE`: the `gateway:` section of FILE. SIGHUP reloads,
 * SIGTERM/SIGINT stop. With `workers` > 1 this process is a small node:cluster primary
 * (primary.ts) and only the workers load the gateway and its dependencies.
 */
async function main(argv: string[]): Promise<number> {
  const i = argv.indexOf('--config');
  const file = i >= 0 ? argv[i + 1] : undefined;
  if (!file) {
    process.stderr.write('usage: outpost-gateway --config FILE\n');
    return 2;
  }
  // Before anything is opened: the data dir's keys and db are private (0700/0600) whatever the login umask.
  usePrivateUmask();
  if (cluster.isPrimary) {
    const workers = await rawWorkers(file, process.env);
    if (workers > 1) return runPrimary(workers);
  }
  // Subpaths, not the package root: a worker loads only what it uses (see common's README).
  const { readConfigFile, applyEnvOverrides, validateConfig, deepFreeze } = await import('@outpost/common/config');
  const { createLogger } = await import('@outpost/common/logger');
  const validate = async (): Promise<GatewayConfig> => {
    const { gatewayConfigSchema } = await import('./config.js');
    const raw = applyEnvOverrides(await readConfigFile(file), process.env);
    return validateConfig(gatewayConfigSchema, raw.gateway ?? {}, { file: `${file} (gateway)` });
  };
  const given = cluster.isWorker && process.env[CONFIG_FROM_PRIMARY] === '1' ? await configFromPrimary() : undefined;
  const config = given ? deepFreeze(given) : await validate();
  const logger = createLogger({ base: { service: 'gateway', ...(cluster.isWorker ? { worker: cluster.worker?.id } : {}) } });
  const { createGateway } = await import('./gateway.js');
  const gw = createGateway(config, { logger, ...(cluster.isWorker ? { peers: workerPeers(config.reportInterval * 3) } : {}) });
  await gw.start();
  process.send?.({ t: 'ready', port: gw.port, config });
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
