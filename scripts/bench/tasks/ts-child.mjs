#!/usr/bin/env node
// The real @outpost/task-server for bench:tasks, in its own process (forked, IPC).
// argv[2]: JSON {coreUrl, enrollToken, dataDir, tickleRate, pollInterval, workers}. Sends
// {ready, url, id, pid, pids} when started (pids: this process and its workers); answers 'stats' with its counters; 'sync' pulls its agents from the core now ({synced, stats}); 'stop' stops it.
import cluster from 'node:cluster';
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
      workers: o.workers ?? 0,
      http: { host: '127.0.0.1', port: o.port ?? 0 },
      coreTickle: { host: '127.0.0.1', port: 0 },
      agents: { tickleRate: o.tickleRate, pollInterval: o.pollInterval, retickleAfter: '3s' },
      core: { pageSize: 10_000 },
      // BENCH_TS_LINGER (e.g. 0) sets forward.linger, to compare with the default.
      ...(process.env.BENCH_TS_LINGER ? { forward: { linger: process.env.BENCH_TS_LINGER } } : {}),
    },
    { file: '<bench>' },
  ),
  { logger },
);
await ts.start();
const pids = () => [process.pid, ...Object.values(cluster.workers ?? {}).map((w) => w.process.pid)];
process.send({ ready: true, url: ts.url, id: ts.id, pid: process.pid, pids: pids() });
process.on('message', async (m) => {
  if (m === 'stats') process.send({ stats: ts.stats(), pids: pids() });
  if (m === 'sync') await ts.syncNow().then(() => process.send({ synced: true, stats: ts.stats() }));
  if (m === 'stop') {
    await ts.stop().catch(() => undefined);
    process.exit(0);
  }
});
