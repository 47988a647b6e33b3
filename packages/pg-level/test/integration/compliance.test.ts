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

/** Runs abstract-level's own suite (test/fixtures/abstract-suite.mjs) against a backend; its TAP output. */
async function suite(args: string[]): Promise<void> {
  const script = fileURLToPath(new URL('../fixtures/abstract-suite.mjs', import.meta.url));
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
}

// One store contract, two backends: the same suite on both.
describe("the core's store contract: abstract-level's own compliance suite", () => {
  it('passes on level (classic-level, the embedded default)', () => suite(['level']), 300_000);

  // In the mode the core runs it (shared: every write journalled and version-checked); the
  // one-opener mode differs only in its write statements (no journal, no version).
  it.runIf(gate.run)('passes on PostgreSQL (PgLevel shared by several openers, as the core runs it)', () => suite([pg!.url, 'shared']), 300_000);
});
