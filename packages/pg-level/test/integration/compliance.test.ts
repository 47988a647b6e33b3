import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresGate, startPostgres, type TestPostgres } from '@outpost/testing';

const gate = postgresGate('pg-level compliance');
let pg: TestPostgres | undefined;

beforeAll(async () => {
  if (gate.run) pg = await startPostgres({ fsync: false });
}, 120_000);
afterAll(async () => {
  await pg?.destroy();
});

describe.runIf(gate.run)('PgLevel', () => {
  // In the mode the core runs it (shared: every write journalled and version-checked); the
  // one-opener mode differs only in its write statements (no journal, no version).
  it.each([['shared by several openers, as the core runs it', 'shared']])("passes abstract-level's own compliance suite (the one classic-level passes) on a real PostgreSQL: %s", async (_name, mode) => {
    const script = fileURLToPath(new URL('../fixtures/abstract-suite.mjs', import.meta.url));
    const child = spawn(process.execPath, [script, pg!.url, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const pass = Number(/^# pass\s+(\d+)/m.exec(out)?.[1] ?? 0);
    const failures = out.split('\n').filter((l) => l.startsWith('not ok')).slice(0, 20);
    expect(failures, out.slice(-3000)).toEqual([]);
    expect(code).toBe(0);
    // The suite is thousands of assertions: a run that stopped early passes few.
    expect(pass).toBeGreaterThan(1000);
  }, 300_000);
});
