import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore } from '@outpost/core';
import { postgresGate, psql, removeDir, startPostgres, tempDir, type TestPostgres } from '@outpost/testing';
import { main } from '../../src/main.js';
import type { CliIo } from '../../src/io.js';

const gate = postgresGate('outpost core migrate');
let pg: TestPostgres | undefined;
let dir: string;

beforeAll(async () => {
  dir = await tempDir('outpost-migrate-');
  if (gate.run) pg = await startPostgres({ fsync: false });
}, 120_000);
afterAll(async () => {
  await pg?.destroy();
  await removeDir(dir);
});

function io(): CliIo & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l: string) => void lines.push(l), err: (l: string) => void errors.push(l), cwd: dir, env: {} } as unknown as CliIo & { lines: string[]; errors: string[] };
}

const coreConfig = (dataDir: string, store?: unknown) =>
  validateConfig(coreConfigSchema, { dataDir, http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, ...(store ? { store } : {}) }, { file: 'test' });

describe.runIf(gate.run)('outpost core migrate', () => {
  it('copies a level core into PostgreSQL, verified, and the core started on PostgreSQL has everything; and back', async () => {
    const dataDir = join(dir, 'core');
    const a = createCore(coreConfig(dataDir), { logger: silentLogger() });
    await a.start();
    const call = (core: { url: string; adminToken: string }, method: string, path: string, body?: unknown) =>
      fetch(`${core.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${core.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    for (let i = 0; i < 30; i++) expect((await call(a, 'POST', '/sites', { name: `s${i}`, subnets: [`10.${i}.0.0/16`] })).status).toBe(201);
    expect((await call(a, 'POST', '/admins', { name: 'vera', roles: ['viewer'] })).status).toBe(201);
    const audited = ((await (await call(a, 'GET', '/audit?limit=1000')).json()) as { items: unknown[] }).items.length;
    await a.stop();
    await writeFile(join(dir, 'outpost.yaml'), `core:\n  dataDir: ./core\n  http: { host: 127.0.0.1, port: 0 }\n`);

    const out = io();
    expect(await main(['core', 'migrate', '--to', 'postgres', pg!.url, '--table', 'migrated', '--config', 'outpost.yaml'], out)).toBe(0);
    expect(out.lines[0]).toMatch(/^copied \d+ entries from level .* to postgres postgres:\/\/outpost@127\.0\.0\.1:\d+\/outpost$/);
    expect(out.lines[1]).toMatch(/^verified: \d+ entries on both sides, sha256 [0-9a-f]{64}$/);
    expect(Number(await psql(pg!, 'SELECT count(*) FROM migrated'))).toBe(Number(/copied (\d+)/.exec(out.lines[0]!)![1]));

    // Again into the same table: refused, nothing doubled.
    const again = io();
    expect(await main(['core', 'migrate', '--to', 'postgres', pg!.url, '--table', 'migrated', '--config', 'outpost.yaml'], again)).toBe(1);
    expect(again.errors.join('\n')).toContain('CORE_MIGRATE_TARGET_NOT_EMPTY');

    // The same data dir (its files: the owner token, the keys), the records now in PostgreSQL.
    const b = createCore(coreConfig(dataDir, { kind: 'postgres', url: pg!.url, table: 'migrated' }), { logger: silentLogger() });
    await b.start();
    try {
      expect(b.adminToken).toBe(a.adminToken);
      const sites = ((await (await call(b, 'GET', '/sites')).json()) as { items: { name: string }[] }).items;
      expect(sites).toHaveLength(30);
      const admins = ((await (await call(b, 'GET', '/admins')).json()) as { items: { name: string }[] }).items.map((x) => x.name);
      expect(admins).toEqual(['vera']);
      const verify = (await (await call(b, 'GET', '/audit/verify')).json()) as { ok: boolean; entries: number };
      expect(verify.ok).toBe(true);
      expect(verify.entries).toBeGreaterThanOrEqual(audited);
    } finally {
      await b.stop();
    }

    // And back into an empty data dir.
    await writeFile(join(dir, 'back.yaml'), `core:\n  dataDir: ./back\n  http: { host: 127.0.0.1, port: 0 }\n`);
    const back = io();
    expect(await main(['core', 'migrate', '--to', 'level', '--from', pg!.url, '--table', 'migrated', '--config', 'back.yaml', '--json'], back)).toBe(0);
    const result = JSON.parse(back.lines.join('\n')) as { source: { entries: number; sha256: string }; target: { entries: number; sha256: string } };
    expect(result.target).toEqual(result.source);
  }, 120_000);

  it('refuses a bad command line with the usage (exit 2)', async () => {
    const out = io();
    expect(await main(['core', 'migrate', '--to', 'mysql'], out)).toBe(2);
    expect(out.errors.join('\n')).toMatch(/--to must be postgres or level/);
  });
});
