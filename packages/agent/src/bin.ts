#!/usr/bin/env node
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, isOutpostError, usePrivateUmask, OutpostError, parseDuration, type Logger } from '@outpost/common';
import { createAgent } from './agent.js';
import { DEFAULT_CONFIG_FILE, loadAgentConfig } from './cli/agent-config-file.js';
import { writeEnrollConfig } from './cli/enroll-command.js';
import { versionText } from './cli/version.js';
import { AgentErrors } from './errors.js';
import { isSingleFile } from './version.js';
import { createSwarm, type HeartbeatReport } from './swarm/swarm.js';

const USAGE = `usage:
  outpost-agent run [--config FILE]
      Runs one agent. FILE (${DEFAULT_CONFIG_FILE}) is YAML or JSON: the agent's keys,
      or a config with an 'agent:' section. OUTPOST_AGENT__<KEY>=value overrides a key.
  outpost-agent enroll --core URL --token TOKEN [--ca-fingerprint SHA256]
                       [--config FILE] [--data-dir DIR] [--name NAME]
      Writes the config (mode 0600) the service runs with: it enrolls with the core
      at its next start and needs the token no more. Other keys of FILE are kept.
  outpost-agent --version [--config FILE]
      Prints the agent's version and the core it is set for.
  outpost-agent swarm --core URL --token TOKEN --count N [options]
      Simulates N agents in this process: enrolls them, then heartbeats.
      --concurrency N       enrollments in flight (64)
      --udp-sockets N       UDP sockets shared by the agents (16)
      --http-connections N  keep-alive HTTP connections (64)
      --via udp,http        heartbeat phases to run, in order (udp,http)
      --duration 20s        length of each heartbeat phase (10s)
      --window N            heartbeats awaiting an answer at once (udp 512, http = connections)
      --rate N              most heartbeats per second (unlimited)
      --json                print the report as JSON
      --log-level LEVEL     (warn)`;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function usage(message: string): never {
  throw new OutpostError(AgentErrors.CLI_USAGE, `${message}\n${USAGE}`);
}

function int(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) usage(`--${name} must be a positive integer`);
  return n;
}

async function run(argv: string[], logger: () => Logger): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, 'log-level': { type: 'string' } }, strict: true });
  const config = await loadAgentConfig(values.config ?? DEFAULT_CONFIG_FILE, process.env);
  const log = logger();
  const agent = createAgent(config, { logger: log });
  await agent.start();
  log.info({ id: agent.id, coreUrl: config.coreUrl, identity: agent.identityFile }, 'agent running');
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await agent.stop();
}

async function enroll(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      core: { type: 'string' },
      token: { type: 'string' },
      'ca-fingerprint': { type: 'string' },
      config: { type: 'string' },
      'data-dir': { type: 'string' },
      name: { type: 'string' },
    },
  });
  if (!values.core || !values.token) usage('enroll needs --core URL and --token TOKEN');
  const written = await writeEnrollConfig({
    configFile: values.config ?? DEFAULT_CONFIG_FILE,
    coreUrl: values.core,
    token: values.token,
    caFingerprint: values['ca-fingerprint'],
    dataDir: values['data-dir'] === undefined ? undefined : resolve(values['data-dir']),
    name: values.name,
  });
  console.log(`wrote ${written.configFile} (mode 0600): the agent enrolls with ${written.coreUrl.join(', ')} at its next start (data dir ${written.dataDir})`);
  if (written.existingId) {
    console.log(`note: ${written.dataDir} already holds identity ${written.existingId}: it is kept; the token serves only if that identity belongs to another computer or is removed`);
  }
}

function line(r: HeartbeatReport): string {
  return `${r.via}: ${r.perSecond} hb/s processed (sent ${r.sent}, answered ${r.acked}, timeouts ${r.timeouts}, errors ${r.errors}); latency p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms`;
}

async function swarm(argv: string[], logger: () => Logger): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      core: { type: 'string' },
      token: { type: 'string' },
      count: { type: 'string' },
      concurrency: { type: 'string' },
      'udp-sockets': { type: 'string' },
      'http-connections': { type: 'string' },
      via: { type: 'string', default: 'udp,http' },
      duration: { type: 'string', default: '10s' },
      window: { type: 'string' },
      rate: { type: 'string' },
      json: { type: 'boolean', default: false },
      'log-level': { type: 'string' },
    },
  });
  if (!values.core || !values.token || !values.count) usage('swarm needs --core URL, --token TOKEN and --count N');
  const phases = values.via.split(',').map((v) => v.trim());
  if (phases.some((p) => p !== 'udp' && p !== 'http')) usage('--via takes udp, http or both (udp,http)');
  const durationMs = parseDuration(values.duration);
  const s = createSwarm(
    {
      coreUrl: values.core,
      enrollToken: values.token,
      count: int(values.count, 'count', 1),
      concurrency: int(values.concurrency, 'concurrency', 64),
      udpSockets: int(values['udp-sockets'], 'udp-sockets', 16),
      httpConnections: int(values['http-connections'], 'http-connections', 64),
    },
    { logger: logger() },
  );
  try {
    const enrollment = await s.enroll();
    if (!values.json) console.log(`enroll: ${enrollment.enrolled}/${enrollment.requested} in ${enrollment.durationMs} ms (${enrollment.perSecond}/s), errors ${enrollment.errors}`);
    const heartbeats: HeartbeatReport[] = [];
    if (s.enrolled > 0) {
      for (const via of phases as Array<'udp' | 'http'>) {
        const r = await s.heartbeat({
          via,
          durationMs,
          ...(values.window ? { window: int(values.window, 'window', 1) } : {}),
          ...(values.rate ? { rate: int(values.rate, 'rate', 1) } : {}),
        });
        heartbeats.push(r);
        if (!values.json) console.log(line(r));
      }
    }
    if (values.json) {
      console.log(JSON.stringify({ enrollment, heartbeats: heartbeats.map(({ histogram: _h, ...rest }) => rest) }));
    }
    if (enrollment.errors > 0 || heartbeats.some((h) => h.errors > 0)) process.exitCode = 1;
  } finally {
    await s.close();
  }
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  const levelArg = rest.indexOf('--log-level');
  const given = levelArg >= 0 ? rest[levelArg + 1] : undefined;
  const level = LEVELS.find((l) => l === given);
  if (given !== undefined && !level) usage(`--log-level takes one of ${LEVELS.join(', ')}`);
  // The single file has no pino-pretty to start a transport worker from: JSON lines always.
  const pretty = isSingleFile() ? { pretty: false } : {};
  const logger = (): Logger => createLogger({ level: level ?? (command === 'swarm' ? 'warn' : 'info'), base: { service: 'agent' }, ...pretty });
  if (command === '--version' || command === '-v' || command === 'version') {
    const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } }, strict: true });
    console.log(await versionText(values.config ?? DEFAULT_CONFIG_FILE, process.env));
    return;
  }
  if (command === 'run') {
    // Before the data dir is opened: its key and db are private (0700/0600) whatever the login umask.
    usePrivateUmask();
    return run(rest, logger);
  }
  if (command === 'swarm') return swarm(rest, logger);
  if (command === 'enroll') {
    usePrivateUmask();
    return enroll(rest);
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return;
  }
  usage(command ? `unknown command '${command}'` : 'no command given');
}

main().catch((err: unknown) => {
  if (isOutpostError(err)) console.error(`outpost-agent: ${err.code}: ${err.message}`);
  else console.error('outpost-agent:', err);
  process.exitCode = process.exitCode || 2;
});
