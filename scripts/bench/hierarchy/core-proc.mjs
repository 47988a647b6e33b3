#!/usr/bin/env node
// One real @outpost/core for bench:hierarchy, in its own process: argv[2] is JSON
// {dataDir, hierarchy?} (port 0 on 127.0.0.1 for HTTP and datagrams; `hierarchy` is the
// core's hierarchy section, e.g. a link listener on port 0). Prints one JSON line on stdout,
// {url, adminToken, pid}; SIGTERM/SIGINT/disconnect stop it cleanly. Logs (BENCH_CORE_LOG,
// default error) on stderr.
import { createLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore } from '@outpost/core';

const o = JSON.parse(process.argv[2]);
const logger = createLogger({ level: process.env.BENCH_CORE_LOG ?? 'error', pretty: false, base: { core: o.name } });
const config = validateConfig(
  coreConfigSchema,
  { dataDir: o.dataDir, http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, ...(o.hierarchy ? { hierarchy: o.hierarchy } : {}) },
  { file: '<bench>' },
);
const core = createCore(config, { logger });
await core.start();
process.stdout.write(`${JSON.stringify({ url: core.url, adminToken: core.adminToken, pid: process.pid })}\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(3), 20_000).unref();
  await core.stop().catch((err) => logger.error({ err }, 'core stop failed'));
  process.exit(0);
}
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => void stop());
