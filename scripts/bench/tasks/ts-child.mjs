#!/usr/bin/env node
// The real @outpost/task-server for bench:tasks, in its own process (forked, IPC).
// argv[2]: JSON {coreUrl, enrollToken, dataDir, tickleRate, pollInterval}. Sends
// {ready, url, id} when started; answers 'stats' with its counters; 'stop' stops it.
import { createLogger, validateConfig } from '@outpost/common';
import { createTaskServer, taskServerConfigSchema } from '@outpost/task-server';

const o = JSON.parse(process.argv[2]);
const logger = createLogger({ level: process.env.BENCH_TS_LOG ?? 'warn', pretty: false });
const ts = createTaskServer(
  validateConfig(
    taskServerConfigSchema,
    {
      coreUrl: o.coreUrl,
      enrollToken: o.enrollToken,
      dataDir: o.dataDir,
      name: 'bench-ts',
      http: { host: '127.0.0.1', port: 0 },
      coreTickle: { host: '127.0.0.1', port: 0 },
      agents: { tickleRate: o.tickleRate, pollInterval: o.pollInterval, retickleAfter: '3s' },
      core: { pageSize: 10_000 },
    },
    { file: '<bench>' },
  ),
  { logger },
);
await ts.start();
process.send({ ready: true, url: ts.url, id: ts.id, pid: process.pid });
process.on('message', async (m) => {
  if (m === 'stats') process.send({ stats: ts.stats() });
  if (m === 'stop') {
    await ts.stop().catch(() => undefined);
    process.exit(0);
  }
});
