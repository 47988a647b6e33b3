import { access } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { createLogger, OutpostError, usePrivateUmask, warnLooseDataDirs } from '@outpost/common';
import { parseCommand } from '../args.js';
import { privilegedNeeds, startAppliance, type Appliance } from '../appliance.js';
import { loadApplianceConfig } from '../config/load.js';
import { dataDirsOf, publicFilesOf } from '../data-dirs.js';
import { ApplianceErrors, UsageError } from '../errors.js';
import { usage } from '../help.js';
import type { CliIo } from '../io.js';

/** How long `stop` may take before the process gives up on a clean stop. */
const STOP_DEADLINE_MS = 20_000;
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

async function defaultConfig(cwd: string): Promise<string | undefined> {
  for (const file of [join(cwd, 'configs', 'all-in-one.yaml'), '/etc/outpost/outpost.yaml']) {
    if (await access(file).then(() => true, () => false)) return file;
  }
  return undefined;
}

/** Resolves after `ms` without keeping the process alive. */
const after = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

function forcedExit(io: CliIo): number {
  io.err('outpost: second signal: exiting without waiting for the services to stop');
  return 130;
}

/** Lines that tell a person what is running and how to reach it. */
export function banner(appliance: Appliance, configFile: string, cwd: string): string[] {
  const lines = [`Outpost is running (config ${configFile})`];
  const core = appliance.core;
  if (core) {
    const tokenFile = relative(cwd, core.adminTokenFile).startsWith('..') ? core.adminTokenFile : relative(cwd, core.adminTokenFile);
    lines.push(
      `  core         ${core.url}   (datagrams: UDP ${core.datagramPort})`,
      `  admin token  ${tokenFile}   (mode 0600; keep it secret)`,
      `  console      ${core.url}/console/   ("Sign in with an API token": the contents of ${tokenFile}; then add administrators: outpost admin add NAME --role ROLE)`,
    );
  }
  for (const s of appliance.services) if (s.name !== 'core') lines.push(`  ${s.name.padEnd(12)} running${s.detail ? `  ${s.detail}` : ''}`);
  if (core) {
    // The CLI looks for ./configs/all-in-one.yaml by itself; any other config is named.
    const found = resolve(cwd, configFile) === resolve(cwd, 'configs', 'all-in-one.yaml');
    const flag = found ? '' : ` --config ${configFile}`;
    lines.push(
      '',
      '  Try, in another shell from this directory:',
      `    npx outpost site add hq --subnet 10.1.0.0/16${flag}`,
      `    npx outpost site list${flag}`,
      '  (the CLI finds this core and its token through the config; elsewhere set',
      `   OUTPOST_URL=${core.url} and OUTPOST_TOKEN=<contents of the admin token file>)`,
    );
  }
  lines.push('', '  Stop with Ctrl-C (SIGINT) or SIGTERM.');
  return lines;
}

/**
 * `outpost start [--config FILE]`: runs the services until SIGINT/SIGTERM, then stops
 * them in reverse order. Returns the exit status: 0 after a clean stop, 1 when a service
 * failed to start or to stop in time, 130 on a second signal while stopping.
 */
export async function startCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'start';
  const { values, positionals } = parseCommand(cmd, {
    args: [...argv],
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.out(usage(cmd));
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`, cmd);
  // Before anything is created: data dirs 0700, keys, credentials and db files 0600, whatever the login umask.
  usePrivateUmask();
  const file = values.config !== undefined ? resolve(io.cwd, values.config) : await defaultConfig(io.cwd);
  if (file === undefined) throw new UsageError('no --config FILE given, and neither ./configs/all-in-one.yaml nor /etc/outpost/outpost.yaml exists', cmd);
  const shown = values.config ?? (relative(io.cwd, file).startsWith('..') ? file : relative(io.cwd, file));

  const config = await loadApplianceConfig(file, io.env);
  const logger = createLogger({ level: config.log.level, ...(config.log.pretty === undefined ? {} : { pretty: config.log.pretty }) });
  // Root binds them; anyone else learns up front which keys will not start, and why.
  if (process.getuid?.() !== 0) for (const need of privilegedNeeds(config)) io.err(`outpost: privileged: ${need}`);

  // Listen for signals from the start: one during start-up stops cleanly too.
  // The first SIGINT/SIGTERM stops cleanly; a second one exits at once.
  let firstSignal: (sig: string) => void = () => undefined;
  const stopRequested = new Promise<string>((r) => (firstSignal = r));
  let secondSignal: (sig: string) => void = () => undefined;
  const forced = new Promise<{ forced: string }>((r) => (secondSignal = (sig) => r({ forced: sig })));
  let signals = 0;
  const onSignal = (sig: string): void => {
    signals += 1;
    if (signals === 1) firstSignal(sig);
    else secondSignal(sig);
  };
  for (const s of SIGNALS) io.signals.on(s, onSignal);

  const tooLate = (what: string): Promise<never> =>
    after(STOP_DEADLINE_MS).then(() => {
      throw new OutpostError(ApplianceErrors.STOP_TIMEOUT, `the services did not ${what} within ${STOP_DEADLINE_MS / 1000} s of the signal`);
    });
  try {
    // A signal during start-up: stop once started, but do not wait for ever for that.
    const outcome = await Promise.race([
      startAppliance(config, { logger, onStarting: (name) => logger.info({ service: name }, 'starting') }),
      forced,
      stopRequested.then(() => tooLate('finish starting')),
    ]);
    if ('forced' in outcome) return forcedExit(io);
    const appliance = outcome;
    // Dirs made by an older install or loosened by hand: say which, and the fix (the services run regardless).
    await warnLooseDataDirs(dataDirsOf(config), logger, { publicFiles: publicFilesOf(config) }).catch((err: unknown) => logger.warn({ err }, 'data dir mode check failed'));
    if (signals === 0) {
      for (const line of banner(appliance, shown, io.cwd)) io.out(line);
      logger.info({ services: appliance.services.map((s) => s.name), coreUrl: appliance.core?.url, config: file }, 'appliance started');
    }
    const sig = await stopRequested;
    io.err(`outpost: ${sig}: stopping ${[...appliance.services].reverse().map((s) => s.name).join(', ')}`);
    const stopped = await Promise.race([appliance.stop().then(() => ({ stopped: true })), forced, tooLate('stop')]);
    if ('forced' in stopped) return forcedExit(io);
    io.err('outpost: stopped');
    logger.info('appliance stopped');
    return 0;
  } finally {
    for (const s of SIGNALS) io.signals.off(s, onSignal);
    logger.flush();
  }
}
