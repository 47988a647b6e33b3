#!/usr/bin/env node
import { createLogger, isOutpostError, readConfigFile, applyEnvOverrides, validateConfig } from '@outpost/common';
import { gatewayConfigSchema } from './config.js';
import { createGateway } from './gateway.js';

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
  const logger = createLogger({ base: { service: 'gateway' } });
  const gw = createGateway(config, { logger });
  await gw.start();
  process.on('SIGHUP', () => void gw.reload().catch((err: unknown) => logger.error({ err }, 'reload failed')));
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
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
