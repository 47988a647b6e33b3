#!/usr/bin/env node
// Starts the real @outpost/core for a benchmark: port 0 on 127.0.0.1, a temp data dir,
// logs (warn and above) on stderr. Prints one JSON line on stdout:
// {"url","datagramPort","adminToken","pid","dataDir"}. SIGTERM/SIGINT stop it cleanly
// (so `node --cpu-prof` writes its profile) and remove the data dir.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore } from '@outpost/core';

const dataDir = await mkdtemp(join(process.env.BENCH_TMP ?? tmpdir(), 'outpost-bench-core-'));
const logger = createLogger({ level: process.env.BENCH_CORE_LOG ?? 'warn', pretty: false });
const config = validateConfig(
  coreConfigSchema,
  {
    dataDir,
    http: { host: '127.0.0.1', port: 0 },
    datagram: { host: '127.0.0.1', port: 0 },
  },
  { file: '<bench>' },
);
const core = createCore(config, { logger });
await core.start();
process.stdout.write(`${JSON.stringify({ url: core.url, datagramPort: core.datagramPort, adminToken: core.adminToken, pid: process.pid, dataDir })}\n`);

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  const timer = setTimeout(() => process.exit(3), 20_000);
  try {
    await core.stop();
  } catch (err) {
    logger.error({ err }, 'core stop failed');
  }
  await rm(dataDir, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
  clearTimeout(timer);
  logger.warn({ signal }, 'bench core stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
process.on('disconnect', () => void stop('disconnect'));
