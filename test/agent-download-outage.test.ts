import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, validateConfig } from '@outpost/common';
import { createCoreClient, downloadPackage, type CoreClient } from '@outpost/agent';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { createPackageServer, packageServerConfigSchema, type PackageServer } from '@outpost/package-server';
import { grantFor, postgresGate, removeDir, startPostgres, tempDir, waitFor, type TestPostgres } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from './fixtures/e2e.js';

const gate = postgresGate('agent download status across a database outage');
let pg: TestPostgres | undefined;
let dir: string | undefined;
let core: Core | undefined;
let client: CoreClient | undefined;
let ps: PackageServer | undefined;

beforeAll(async () => {
  if (!gate.run) return;
  pg = await startPostgres({ fsync: false });
  dir = await tempDir('outpost-agent-dl-');
}, 120_000);
afterAll(async () => {
  client?.close();
  await ps?.stop();
  await core?.stop();
  await pg?.destroy();
  if (dir) await removeDir(dir);
}, 60_000);

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const admin = <T>(method: string, path: string, body?: unknown) => adminApi<T>(core!, method, path, body);

describe.runIf(gate.run)("a package download while the core's database is away", () => {
  it('returns the verified files, and sends the download status again until the core takes it once its database is back', async () => {
    core = createCore(
      validateConfig(
        coreConfigSchema,
        { dataDir: join(dir!, 'core'), http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, store: { kind: 'postgres', url: pg!.url, table: 'agent_download' } },
        { file: '<test>' },
      ),
      { logger: silentLogger() },
    );
    await core.start();
    const file = randomBytes(256 * 1024 + 3);
    const pkg = (await admin<{ id: string }>('POST', '/packages', { name: 'tool', version: '1', files: [{ path: 'bin/tool', size: file.length, sha256: sha(file) }] })).body;
    expect((await admin('PUT', `/packages/${pkg.id}/files/bin/tool`, file)).status).toBe(200);
    // Staged on a package server: the agent downloads from there, and reports to the core.
    const psToken = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ package: { constrained: false } }, { addresses: ['127.0.0.1'] }) });
    ps = createPackageServer(
      validateConfig(
        packageServerConfigSchema,
        { name: 'ps-1', coreUrl: core.url, dataDir: join(dir!, 'ps'), enrollToken: psToken.token, http: { host: '127.0.0.1', port: 0 }, tickle: { host: '127.0.0.1', port: 0 }, retry: { base: '300ms', cap: '2s' }, reserveBytes: 0 },
        { file: '<test>' },
      ),
    );
    await ps.start();
    expect((await admin('POST', `/packages/${pkg.id}/enable`, {})).status).toBe(200);
    await waitFor(async () => (await admin<{ servers: Array<{ state: string }> }>('GET', `/packages/${pkg.id}`)).body.servers[0]?.state === 'ready', { timeoutMs: 30_000, what: 'the package staged' });
    const { token } = await core.createEnrollmentToken({ for: 'agent' });
    const enrolled = (await (await fetch(`${core.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, name: 'pc-1' }) })).json()) as { id: string; credential: string };
    client = createCoreClient({ coreUrl: core.url });

    await pg!.stop();
    let reported: Promise<boolean>;
    try {
      // The database is away: the core refuses changes, the download status among them.
      expect((await admin<{ error: { code: string } }>('POST', '/sites', { name: 'x', subnets: ['10.9.0.0/16'] })).body.error.code).toBe('CORE_STORE_UNAVAILABLE');
      const dest = join(dir!, 'dest');
      const result = await downloadPackage({ client, bearer: enrolled.credential, agentId: enrolled.id, package: 'tool', destDir: dest, reportRetry: { baseMs: 100, capMs: 500 } });
      expect(sha(await readFile(join(dest, 'bin', 'tool')))).toBe(sha(file));
      expect(Object.keys(result.fromCodebase)).toEqual([`${ps!.url}/packages/${pkg.id}`]);
      reported = result.reported;
      // Still being sent while the database is away.
      expect(await Promise.race([reported, sleep(1_500).then(() => 'sending')])).toBe('sending');
      expect((await admin<{ downloads: { ok: number } }>('GET', `/packages/${pkg.id}`)).body.downloads.ok).toBe(0);
    } finally {
      await pg!.start();
    }
    await waitFor(async () => (await admin<{ downloads: { ok: number } }>('GET', `/packages/${pkg.id}`)).body.downloads.ok === 1, { timeoutMs: 30_000, what: 'the download status taken once the database is back' });
    expect(await reported).toBe(true);
  });
});
