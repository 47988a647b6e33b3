#!/usr/bin/env node
// Store benchmark (issue 16): the core's records on PostgreSQL (@outpost/pg-level) against
// the embedded default it stands beside (classic-level, the `level` store), the same
// workload on both: BENCH_BATCHES batches of BENCH_BATCH JSON records (the size of an
// agent record with its index entries), then gets of single keys, then a full scan in key
// order. A throwaway PostgreSQL server is started in a temp dir (fsync and synchronous
// commit on, as in production). Level runs twice: bare, and with the core's change journal
// (issue #17: every batch also writes its journal entry; `ratioJournal` is its cost). Prints one summary line `bench:store {json}` with the
// ratios (PostgreSQL / level, ops per second; PostgreSQL one opener and `shared` as several
// cores run it) and writes bench-results/store-<time>.json.
// Bounded: a fixed count of operations per phase.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '@outpost/common';
import { LevelJournal } from '@outpost/core';
import { PgLevel } from '@outpost/pg-level';
import { removeDir, startPostgres, tempDir } from '@outpost/testing';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BATCHES = Number(process.env.BENCH_BATCHES ?? 2000);
const BATCH = Number(process.env.BENCH_BATCH ?? 3);
const GETS = Number(process.env.BENCH_GETS ?? 5000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

const record = (i) => ({ id: `ag_${String(i).padStart(8, '0')}`, name: `pc-${i}`, macs: ['52:54:00:00:00:01'], ips: [`10.1.${i >> 8 & 255}.${i & 255}`], os: 'Debian 12', authHash: 'x'.repeat(64), enrolledAt: Date.now() });

/** Runs `n` tasks with `CONCURRENCY` in flight; ops per second. */
async function timed(n, task) {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) await task(next++);
  }));
  return n / ((performance.now() - t0) / 1000);
}

async function run(db) {
  const agents = db.sublevel('agents', { valueEncoding: 'json' });
  const index = db.sublevel('agent-macs', { valueEncoding: 'json' });
  const writes = await timed(BATCHES, (b) => {
    const ops = [];
    for (let j = 0; j < BATCH; j++) {
      const i = b * BATCH + j;
      ops.push({ type: 'put', sublevel: agents, key: record(i).id, value: record(i) }, { type: 'put', sublevel: index, key: `52:54:00:00:00:01!ag_${i}`, value: `ag_${i}` });
    }
    return db.batch(ops);
  });
  const gets = await timed(GETS, (i) => agents.get(record((i * 7919) % (BATCHES * BATCH)).id));
  const t0 = performance.now();
  const all = await agents.values().all();
  const scan = all.length / ((performance.now() - t0) / 1000);
  if (all.length !== BATCHES * BATCH) throw new Error(`scan saw ${all.length} records`);
  return { writes, gets, scan };
}

const dir = await tempDir('outpost-bench-store-');
const pg = await startPostgres({ fsync: true });
try {
  const level = await openDatabase(join(dir, 'level'));
  const onLevel = await run(level);
  await level.close();
  const journaled = await openDatabase(join(dir, 'level-journal'));
  const journal = await LevelJournal.open(journaled, { retentionMs: 86_400_000 });
  const onLevelJournal = await run(journaled);
  if (journal.head() !== BATCHES) throw new Error(`the journal has ${journal.head()} entries`);
  await journaled.close();
  const onPgOf = async (table, shared) => {
    const pgdb = new PgLevel({ connectionString: pg.url, table, valueEncoding: 'json', poolSize: CONCURRENCY, shared });
    await pgdb.open();
    try {
      return await run(pgdb);
    } finally {
      await pgdb.close();
    }
  };
  // One opener, and shared (as the core runs it: every write journalled under one lock and version-checked).
  const onPg = await onPgOf('bench', false);
  const onShared = await onPgOf('bench_shared', true);
  const round = (x) => Math.round(x);
  const ratio = (a, b) => Math.round((a / b) * 1000) / 1000;
  const figures = (r) => ({ batchesPerS: round(r.writes), getsPerS: round(r.gets), scanRecordsPerS: round(r.scan) });
  const ratios = (r) => ({ batches: ratio(r.writes, onLevel.writes), gets: ratio(r.gets, onLevel.gets), scan: ratio(r.scan, onLevel.scan) });
  const result = {
    batches: BATCHES, recordsPerBatch: BATCH, gets: GETS, concurrency: CONCURRENCY,
    level: figures(onLevel),
    levelJournal: figures(onLevelJournal),
    ratioJournal: ratios(onLevelJournal),
    postgres: figures(onPg),
    postgresShared: figures(onShared),
    ratio: ratios(onPg),
    ratioShared: ratios(onShared),
  };
  console.log(`level with the change journal / level: batches ${result.ratioJournal.batches}x, gets ${result.ratioJournal.gets}x, scan ${result.ratioJournal.scan}x`);
  console.log(`postgres / level: batches ${result.ratio.batches}x, gets ${result.ratio.gets}x, scan ${result.ratio.scan}x`);
  console.log(`postgres shared (several cores) / level: batches ${result.ratioShared.batches}x, gets ${result.ratioShared.gets}x, scan ${result.ratioShared.scan}x`);
  console.log(`bench:store ${JSON.stringify(result)}`);
  await mkdir(join(root, 'bench-results'), { recursive: true });
  await writeFile(join(root, 'bench-results', `store-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2));
} finally {
  await pg.destroy();
  await removeDir(dir);
}
