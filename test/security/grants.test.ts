// Attack tests: a site server's roles are granted, never claimed. A real core with its
// CA, a real task server, a real package server and a real gateway on loopback; the
// attacker is the package server's own credential (read from its identity file), used
// by a plain HTTP client. Each test runs the attack and asserts its effect did NOT happen.
import { createServer, type Server, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createKeyAndCsr, silentLogger, validateConfig } from '@outpost/common';
import { createCore, coreConfigSchema, type Core } from '@outpost/core';
import { createGateway, gatewayConfigSchema, type Gateway } from '@outpost/gateway';
import { createPackageServer, loadPackageServerIdentity, packageServerConfigSchema, type PackageServer } from '@outpost/package-server';
import type { TaskServer } from '@outpost/task-server';
import { grantFor, metricTotal, parseMetrics, removeDir, tempDir, waitFor, type StatedServices } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dial, exchange, run } from '../../packages/gateway/test/helpers.js';
import { adminOk, apiRequest, testTaskServer } from '../fixtures/e2e.js';

let dir: string;
let core: Core;
let ts: TaskServer;
let ps: PackageServer;
let gw: Gateway;
let ca: string;
/** The package server's own credential: the attacker. */
let pkg: { id: string; credential: string };
/** The gateway's own credential. */
let gwCred: string;
const agents: string[] = [];
/** A service inside the "corporate network" no site server was approved for. */
let internal: Server;
let internalPort = 0;
const internalHits: Socket[] = [];

/**
 * The one place this file mints a site-server token: the grant is exactly what the
 * service enrolls with (see @outpost/testing grantFor).
 */
async function siteServerToken(services: StatedServices, extra: Parameters<typeof grantFor>[1] = {}): Promise<string> {
  return (await core.createEnrollmentToken({ for: 'site-server', grant: grantFor(services, extra) })).token;
}

const as = <T = Record<string, unknown>>(bearer: string, method: string, path: string, body?: unknown) => apiRequest<T>(core.url, bearer, method, path, body);
const admin = <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => adminOk<T>(core, method, path, body);
const errorCode = (body: unknown): string | undefined => (body as { error?: { code?: string } }).error?.code;

beforeAll(async () => {
  dir = await tempDir('outpost-sec-grants-');
  core = createCore(validateConfig(coreConfigSchema, { dataDir: join(dir, 'core'), http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, ca: { reconcileInterval: '100ms' } }, { file: 'e2e' }), { logger: silentLogger() });
  await core.start();
  await admin('POST', '/sites', { name: 'lab', subnets: ['10.50.0.0/16'] });

  ts = testTaskServer({ coreUrl: core.url, dataDir: join(dir, 'ts'), name: 'ts-granted', enrollToken: await siteServerToken({ task: {} }) });
  await ts.start();

  ps = createPackageServer(
    validateConfig(
      packageServerConfigSchema,
      { name: 'ps-only', coreUrl: core.url, dataDir: join(dir, 'ps'), enrollToken: await siteServerToken({ package: { constrained: false } }, { addresses: ['127.0.0.1'] }), http: { host: '127.0.0.1', port: 0 }, tickle: { host: '127.0.0.1', port: 0 }, reserveBytes: 0, watchStore: false },
      { file: 'e2e' },
    ),
    { logger: silentLogger() },
  );
  await ps.start();
  const identity = await loadPackageServerIdentity(join(dir, 'ps'));
  pkg = { id: identity!.id, credential: identity!.credential };

  gw = createGateway(
    validateConfig(
      gatewayConfigSchema,
      {
        name: 'gw-sec',
        dataDir: join(dir, 'gw'),
        listen: { host: '127.0.0.1', port: 0 },
        metrics: { host: '127.0.0.1', port: 0 },
        cores: [{ url: core.url, enrollToken: await siteServerToken({ gateway: { url: 'https://127.0.0.1:1' } }, { names: ['localhost'] }) }],
        refreshInterval: '200ms',
        reportInterval: '200ms',
      },
      { file: 'e2e' },
    ),
    { logger: silentLogger(), processMetrics: false },
  );
  await gw.start();
  const gwIdentity = JSON.parse(await readFile(join(dir, 'gw', 'cores', createHash('sha256').update(core.url).digest('hex').slice(0, 12), 'identity.json'), 'utf8')) as { credential: string };
  gwCred = gwIdentity.credential;
  ca = await (await fetch(`${core.url}/api/v1/ca/certificate`, { headers: { authorization: `Bearer ${core.adminToken}` } })).text();

  for (const n of [1, 2]) {
    const { token } = await core.createEnrollmentToken({ for: 'agent' });
    const r = await fetch(`${core.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, name: `lab-pc-${n}`, ips: [`10.50.0.${10 + n}/16`] }) });
    agents.push(((await r.json()) as { id: string }).id);
  }
  await core.registry.settled();

  internal = createServer((s) => {
    internalHits.push(s);
    s.end('SSH-2.0-internal\r\n');
  });
  await new Promise<void>((r) => internal.listen(0, '127.0.0.2', () => r()));
  internalPort = (internal.address() as { port: number }).port;
}, 120_000);

afterAll(async () => {
  for (const s of internalHits) s.destroy();
  await new Promise<void>((r) => internal?.close(() => r()));
  await gw?.stop();
  await ps?.stop();
  await ts?.stop();
  await core?.stop();
  await removeDir(dir);
});

const taskServerOf = async (agent: string): Promise<string | undefined> => (await admin<{ taskServer?: string }>('GET', `/agents/${agent}`)).taskServer;

describe('a site server cannot claim a role it was not granted', () => {
  it('(a) a package-only site server claiming the task service and an address in the agents\' subnet is refused and moves no agent', async () => {
    for (const a of agents) expect(await taskServerOf(a)).toBe(ts.id);
    const before = await admin<{ services: unknown; sites: string[]; effectiveSites: string[] }>('GET', `/site-servers/${pkg.id}`);
    const refusedBefore = metricTotal(parseMetrics(await (await fetch(`${core.url}/metrics`)).text()), 'outpost_core_claims_refused_total');

    const claims = [
      { services: { task: { url: ps.url } }, address: '10.50.0.99/16' },
      { services: { task: { url: ps.url } } },
      { address: '10.50.0.99/16' },
      { services: { package: { constrained: true, url: ps.url } } },
    ];
    for (const claim of claims) {
      const r = await as(pkg.credential, 'POST', `/site-servers/${pkg.id}/heartbeat`, claim);
      expect(r.status, JSON.stringify(claim)).toBe(403);
      expect(errorCode(r.body), JSON.stringify(claim)).toBe('CORE_CLAIM_REFUSED');
    }
    await core.registry.settled();
    // Nothing of it was applied: the record, its sites and every agent's task server are unchanged.
    const after = await admin<{ services: unknown; sites: string[]; effectiveSites: string[] }>('GET', `/site-servers/${pkg.id}`);
    expect(after.services).toEqual(before.services);
    expect(after.effectiveSites).toEqual([]);
    for (const a of agents) expect(await taskServerOf(a)).toBe(ts.id);
    const refusedAfter = metricTotal(parseMetrics(await (await fetch(`${core.url}/metrics`)).text()), 'outpost_core_claims_refused_total');
    expect(refusedAfter - refusedBefore).toBe(claims.length);
    // It gets no agent keys: the task-service routes check the grant, not a claim.
    for (const path of ['/task-service/agents', `/task-service/agents/${agents[0]}`, '/task-service/pending']) {
      const r = await as(pkg.credential, 'GET', path);
      expect(r.status, path).toBe(403);
      expect(errorCode(r.body), path).toBe('CORE_TASK_NOT_A_TASK_SERVER');
    }
    // Restating what it was granted is fine.
    const ok = await as(pkg.credential, 'POST', `/site-servers/${pkg.id}/heartbeat`, { services: { package: { constrained: false, url: ps.url } } });
    expect(ok.status).toBe(200);
  });

  it('(b) a claimed package URL at an unapproved host is refused, and the gateway refuses a CONNECT there', async () => {
    // The address last: without the defence it would be the route left in the table.
    for (const url of [`http://intranet.corp.example:${internalPort}`, `http://127.0.0.2:${internalPort}`]) {
      const r = await as(pkg.credential, 'POST', `/site-servers/${pkg.id}/heartbeat`, { services: { package: { constrained: false, url } } });
      expect(r.status, url).toBe(403);
      expect(errorCode(r.body), url).toBe('CORE_CLAIM_REFUSED');
    }
    const routes = await as<{ targets: Array<{ target: string }> }>(gwCred, 'GET', '/gateway/routes');
    expect(routes.status).toBe(200);
    expect(routes.body.targets.map((t) => t.target)).not.toContain(`127.0.0.2:${internalPort}`);

    // An agent with a certificate asks the real gateway for the internal host:port.
    const { token } = await core.createEnrollmentToken({ for: 'agent' });
    const { keyPem, csrPem } = createKeyAndCsr('roaming');
    const enrolled = (await (await fetch(`${core.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, name: 'roaming', csr: csrPem }) })).json()) as { certificate: string };
    await new Promise((r) => setTimeout(r, 600)); // a few gateway refreshes (200 ms)
    const sock = await dial(gw.port, { cert: enrolled.certificate, key: keyPem, ca });
    const answer = await exchange(sock, `CONNECT 127.0.0.2:${internalPort} HTTP/1.1\r\nHost: 127.0.0.2:${internalPort}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 403/);
    expect(answer).toContain('GATEWAY_TARGET_NOT_ALLOWED');
    expect(internalHits).toHaveLength(0);
  });

  it('(c) /ca/renew with a CSR naming the core\'s name or another name is refused; an issued certificate names only approved addresses', async () => {
    for (const names of [['localhost'], ['gw.example.net'], ['127.0.0.1', 'core.example.net'], ['10.50.0.1']]) {
      const r = await as(pkg.credential, 'POST', '/ca/renew', { csr: createKeyAndCsr('ps-only', names).csrPem });
      expect(r.status, names.join(',')).toBe(403);
      expect(errorCode(r.body), names.join(',')).toBe('CORE_CA_NAME_NOT_APPROVED');
    }
    const ok = await as<{ certificate: string }>(pkg.credential, 'POST', '/ca/renew', { csr: createKeyAndCsr('ps-only', ['127.0.0.1']).csrPem });
    expect(ok.status).toBe(201);
    const certFile = join(dir, 'ps-renewed.crt');
    await writeFile(certFile, ok.body.certificate);
    const text = (await run('openssl', ['x509', '-noout', '-text', '-in', certFile], '')).out;
    const san = /X509v3 Subject Alternative Name:.*\n\s*(.*)/.exec(text)?.[1] ?? '';
    expect(san.split(',').map((s) => s.trim()).sort()).toEqual(['IP Address:127.0.0.1', `URI:outpost://${/URI:outpost:\/\/([\w.-]+)\//.exec(san)?.[1]}/site-server/${pkg.id}`].sort());

    // An agent's certificate: clientAuth only, no DNS or IP name whatever its CSR asks.
    const { token } = await core.createEnrollmentToken({ for: 'agent' });
    const res = await fetch(`${core.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, name: 'sneaky', csr: createKeyAndCsr('sneaky', ['localhost', '127.0.0.1']).csrPem }) });
    expect(res.status).toBe(201);
    const agentFile = join(dir, 'agent.crt');
    await writeFile(agentFile, ((await res.json()) as { certificate: string }).certificate);
    const agentText = (await run('openssl', ['x509', '-noout', '-text', '-in', agentFile], '')).out;
    expect(agentText).not.toMatch(/DNS:|IP Address:/);
    expect(/X509v3 Extended Key Usage:.*\n\s*(.*)/.exec(agentText)?.[1]?.trim()).toBe('TLS Web Client Authentication');
  });

  it('(d) a non-gateway site server may not post a connection report; a gateway\'s oversized report is refused', async () => {
    const small = { name: 'forged', stats: {}, connections: [] };
    const r = await as(pkg.credential, 'POST', '/gateway/connections', small);
    expect(r.status).toBe(403);
    expect(errorCode(r.body)).toBe('CORE_CA_NOT_A_GATEWAY');
    expect((await as(pkg.credential, 'GET', '/gateway/routes')).status).toBe(403);
    expect((await as(pkg.credential, 'GET', '/ca/revocations?since=0')).status).toBe(403);

    const conn = { principal: 'ag_x', kind: 'agent', serial: '1', remote: '127.0.0.1:1', target: 'x:1', since: new Date().toISOString(), bytesIn: 0, bytesOut: 0 };
    const big = await as(gwCred, 'POST', '/gateway/connections', { name: 'gw-sec', stats: {}, connections: [], pad: 'x'.repeat(17 * 1024 * 1024) });
    expect(big.status).toBe(413);
    const many = await as(gwCred, 'POST', '/gateway/connections', { name: 'gw-sec', stats: {}, connections: Array.from({ length: 100_001 }, () => conn) });
    expect(many.status).toBe(400);
    // Neither replaced the gateway's own table; the forged name never shows.
    const view = await admin<{ gateways: Array<{ name: string }> }>('GET', '/gateway/connections');
    expect(view.gateways.map((g) => g.name)).not.toContain('forged');
    const names = await waitFor(
      async () => {
        const n = (await admin<{ gateways: Array<{ name: string }> }>('GET', '/gateway/connections')).gateways.map((g) => g.name);
        return n.includes('gw-sec') && n;
      },
      { what: "the gateway's own report" },
    );
    expect(names).toContain('gw-sec');
    expect(names).not.toContain('forged');
  });

  it('(e) a route by a DNS name a site server was approved for is dialled at its approved address, never looked up', async () => {
    // The name does not resolve (.invalid): only the core's approved address can reach the package server.
    const name = 'ps-only.grants.invalid';
    const port = new URL(ps.url).port;
    await admin('PATCH', `/site-servers/${pkg.id}`, { grant: { names: [name] } });
    const r = await as(pkg.credential, 'POST', `/site-servers/${pkg.id}/heartbeat`, { services: { package: { constrained: false, url: `http://${name}:${port}` } } });
    expect(r.status).toBe(200);
    const routes = await as<{ targets: Array<{ target: string; addresses: string[] }> }>(gwCred, 'GET', '/gateway/routes');
    expect(routes.body.targets).toContainEqual(expect.objectContaining({ target: `${name}:${port}`, addresses: ['127.0.0.1'] }));
    const { token } = await core.createEnrollmentToken({ for: 'agent' });
    const { keyPem, csrPem } = createKeyAndCsr('roaming-2');
    const enrolled = (await (await fetch(`${core.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, name: 'roaming-2', csr: csrPem }) })).json()) as { certificate: string };
    await new Promise((res) => setTimeout(res, 600));
    const sock = await dial(gw.port, { cert: enrolled.certificate, key: keyPem, ca });
    expect(await exchange(sock, `CONNECT ${name}:${port} HTTP/1.1\r\nHost: ${name}:${port}\r\n\r\n`)).toContain('200 Connection Established');
    sock.destroy();
  });
});
