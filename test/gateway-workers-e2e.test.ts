// End to end: `outpost-gateway` with two worker processes, linked to a real core. Each
// worker holds some of the tunnels; the core must see one connection table for the
// gateway with all of them (not the last worker's), so `outpost gateway connections`
// is right.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { createKeyAndCsr, silentLogger, validateConfig } from '@outpost/common';
import { createCore, coreConfigSchema, type Core } from '@outpost/core';
import { adminApi } from './fixtures/e2e.js';
import { freePort, grantFor, removeDir, tempDir } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dial, exchange, until } from '../packages/gateway/test/helpers.js';

/** The grant of a gateway on loopback (its default tls.names: localhost, 127.0.0.1). */
const gatewayToken = async (c: Core): Promise<{ token: string }> => c.createEnrollmentToken({ for: 'site-server', grant: grantFor({ gateway: { url: 'https://127.0.0.1:1' } }, { names: ['localhost'] }) });

let dir: string;
let core: Core;
let gw: ChildProcess | undefined;
let gwOutput = '';

const admin = async (path: string): Promise<any> => (await adminApi<any>(core, 'GET', path)).body;

beforeAll(async () => {
  dir = await tempDir('outpost-gw-workers-');
  core = createCore(validateConfig(coreConfigSchema, { dataDir: join(dir, 'core'), http: { port: 0 }, datagram: { host: '127.0.0.1', port: 0 } }, { file: 'e2e' }), { logger: silentLogger() });
  await core.start();
});

afterAll(async () => {
  if (gw && gw.exitCode === null) {
    const exited = new Promise((r) => gw!.once('exit', r));
    gw.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (gw.exitCode === null) gw.kill('SIGKILL');
  }
  await core?.stop().catch(() => undefined);
  await removeDir(dir);
});

describe('gateway workers', () => {
  it('reports one connection table with every worker’s tunnels to the core', { timeout: 90_000 }, async () => {
    const port = await freePort();
    const { token } = await gatewayToken(core);
    const cfg = join(dir, 'gateway.json');
    await writeFile(
      cfg,
      JSON.stringify({
        gateway: {
          name: 'gw-workers',
          dataDir: join(dir, 'gw'),
          listen: { host: '127.0.0.1', port },
          metrics: { enabled: false },
          cores: [{ url: core.url, enrollToken: token }],
          workers: 2,
          refreshInterval: '200ms',
          reportInterval: '200ms',
        },
      }),
    );
    gw = spawn(process.execPath, [join(process.cwd(), 'packages/gateway/dist/bin.js'), '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OUTPOST_LOG__LEVEL: 'warn' } });
    gw.stdout!.on('data', (d: Buffer) => (gwOutput += d.toString()));
    gw.stderr!.on('data', (d: Buffer) => (gwOutput += d.toString()));
    const ca = await (await fetch(`${core.url}/api/v1/ca/certificate`, { headers: { authorization: `Bearer ${core.adminToken}` } })).text();
    // Both workers up: the first enrolls, then the second starts.
    expect(await until(async () => (await admin('/gateway/connections')).gateways?.length === 1 && (await admin('/gateway/connections')).gateways[0].stats.workers === 2, 30_000), gwOutput).toBe(true);

    // An agent certificate from the core's CA.
    const agentToken = await core.createEnrollmentToken({ for: 'agent' });
    const { keyPem, csrPem } = createKeyAndCsr('roaming');
    const enrolled = (await (await fetch(`${core.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: agentToken.token, name: 'roaming', csr: csrPem }) })).json()) as { id: string; certificate: string };
    const target = new URL(core.url).host;
    const tunnels: TLSSocket[] = [];
    // node:cluster hands connections to the workers in turn: six tunnels land on both.
    for (let i = 0; i < 6; i++) {
      const s = await dial(port, { cert: enrolled.certificate, key: keyPem, ca });
      expect(await exchange(s, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`)).toContain('200 Connection Established');
      tunnels.push(s);
    }
    const seen = await until(async () => {
      const view = await admin('/gateway/connections');
      return view.gateways.length === 1 && view.gateways[0].connections === 6 && view.items.filter((c: { principal: string }) => c.principal === enrolled.id).length === 6;
    }, 20_000);
    const view = await admin('/gateway/connections');
    expect(seen, JSON.stringify(view.gateways)).toBe(true);
    expect(view.gateways[0]).toMatchObject({ name: 'gw-workers', connections: 6, stats: { workers: 2, tunnels: 6 } });
    expect(new Set(view.items.map((c: { remote: string }) => c.remote)).size).toBe(6);

    // Closed tunnels leave the table, whichever worker held them.
    for (const s of tunnels.splice(0, 3)) s.destroy();
    expect(await until(async () => (await admin('/gateway/connections')).gateways[0]?.connections === 3, 20_000)).toBe(true);
    for (const s of tunnels) s.destroy();
  });
});
