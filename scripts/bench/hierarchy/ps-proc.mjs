#!/usr/bin/env node
// One real @outpost/package-server for bench:hierarchy, in its own process: argv[2] is its
// config as JSON. Prints {url, id, pid} on stdout when started; SIGTERM stops it.
import { createLogger, validateConfig } from '@outpost/common';
import { createPackageServer, packageServerConfigSchema } from '@outpost/package-server';

const logger = createLogger({ level: process.env.BENCH_PS_LOG ?? 'error', pretty: false });
const server = createPackageServer(validateConfig(packageServerConfigSchema, JSON.parse(process.argv[2]), { file: '<bench>' }), { logger });
await server.start();
process.stdout.write(`${JSON.stringify({ url: server.url, id: server.id, pid: process.pid })}\n`);
process.on('SIGTERM', () => void server.stop().then(() => process.exit(0), () => process.exit(1)));
