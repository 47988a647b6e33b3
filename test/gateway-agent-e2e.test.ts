// The Internet gateway's "done when", end to end: the appliance runs a core, a task
// server and a gateway (a package server runs next to it in-process); an agent whose
// core URL is wrong, and that knows only the gateway's address, enrolls, heartbeats,
// runs a job (work and status through the tunnel, woken over its WebSocket) and
// downloads a package, all through the gateway; revoking it closes its tunnels and
// refuses it everywhere (the gateway, and its bearer credential at the core).
import { createHash, randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openTunnel, type OutpostAgent } from '@outpost/agent';
import { loadApplianceConfig, startAppliance, type Appliance } from '@outpost/appliance';
import { silentLogger, validateConfig } from '@outpost/common';
import { createPackageServer, packageServerConfigSchema, type PackageServer } from '@outpost/package-server';
import { grantFor, removeDir, tempDir, waitFor } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminOk, apiRequest, testAgent } from './fixtures/e2e.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const FILES: Record<string, Buffer> = { 'bin/tool.bin': randomBytes(512 * 1024 + 3), 'etc/tool.conf': Buffer.from('mode = roaming\n') };

let dir: string;
let app: Appliance;
let ps: PackageServer;
let agent: OutpostAgent;

beforeAll(async () => {
  dir = await tempDir('outpost-gw-agent-e2e-');
  const file = join(dir, 'appliance.json');
  await writeFile(
    file,
    JSON.stringify({
      log: { level: 'silent' },
      core: { dataDir: join(dir, 'core'), http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, siteServers: { heartbeatInterval: '2s' } },
      taskServer: {
        coreUrl: 'http://127.0.0.1:0',
        dataDir: join(dir, 'ts'),
        http: { host: '127.0.0.1', port: 0 },
        coreTickle: { host: '127.0.0.1', port: 0 },
        agents: { pollInterval: '30m', retickleAfter: '1s' },
        forward: { retryBase: '100ms', retryCap: '500ms' },
      },
      gateway: {
        name: 'gw-e2e',
        dataDir: join(dir, 'gw'),
        listen: { host: '127.0.0.1', port: 0 },
        metrics: { host: '127.0.0.1', port: 0 },
        cores: [{ url: 'http://127.0.0.1:0' }],
        // Short refresh: a revocation reaches the gateway within about a second.
        refreshInterval: '500ms',
        reportInterval: '500ms',
        sweepInterval: '1s',
      },
    }),
  );
  app = await startAppliance(await loadApplianceConfig(file), { logger: silentLogger() });
  const core = app.core!;
  const { token } = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ package: { constrained: false } }, { addresses: ['127.0.0.1'] }) });
  ps = createPackageServer(
    validateConfig(
      packageServerConfigSchema,
      { name: 'ps-e2e', coreUrl: core.url, dataDir: join(dir, 'ps'), enrollToken: token, http: { host: '127.0.0.1', port: 0 }, tickle: { host: '127.0.0.1', port: 0 }, retry: { base: '300ms', cap: '2s' }, reserveBytes: 0, timeout: '5s' },
      { file: 'e2e' },
    ),
  );
  await ps.start();
});

afterAll(async () => {
  await agent?.stop();
  await ps?.stop();
  await app?.stop();
  await removeDir(dir);
});

describe('an agent on the Internet, through the gateway only', () => {
  it('enrolls, heartbeats, runs a job and downloads a package through the gateway; revocation cuts it off', async () => {
    const core = app.core!;
    const gw = app.gateway!;
    // A package, staged to the package server (its URL joins the gateway's routing table).
    const manifest = Object.entries(FILES).map(([path, b]) => ({ path, size: b.length, sha256: sha(b) }));
    const pkg = await adminOk<{ id: string }>(core, 'POST', '/packages', { name: 'tool', version: '1', files: manifest });
    for (const [path, b] of Object.entries(FILES)) await adminOk(core, 'PUT', `/packages/${pkg.id}/files/${path}`, b);
    await adminOk(core, 'POST', `/packages/${pkg.id}/enable`, {});
    await waitFor(async () => {
      const v = await adminOk<{ servers: Array<{ state: string }> }>(core, 'GET', `/packages/${pkg.id}`);
      return v.servers.length > 0 && v.servers.every((s) => s.state === 'ready');
    }, { timeoutMs: 15_000, what: 'package staged' });
    await adminOk(core, 'POST', '/tasks', { name: 'hello', kind: 'command', program: 'echo', args: ['roaming'] });
    await adminOk(core, 'POST', '/jobs', { name: 'greet', steps: [{ task: 'hello' }] });

    // The agent: a core URL that answers nothing, the gateway, and the core's CA to trust it.
    const caFile = join(dir, 'ca.crt');
    await writeFile(caFile, await readFile(join(dir, 'core', 'ca', 'ca.crt')));
    const { token } = await core.createEnrollmentToken({ for: 'agent' });
    const agentDir = join(dir, 'agent');
    agent = testAgent({
      coreUrl: 'http://127.0.0.1:9',
      gateways: [gw.url],
      caFile,
      dataDir: agentDir,
      name: 'roaming-laptop',
      enrollToken: token,
      heartbeat: { interval: '1s' },
      retry: { base: '200ms', cap: '1s' },
      tasks: { websocket: 'auto', reconnectSpread: '300ms' },
    });
    await agent.start();

    // Enrolled through the gateway, with a certificate kept next to its identity (0600).
    expect(agent.id).toBeDefined();
    expect(agent.route).toEqual({ kind: 'gateway', url: gw.url });
    const identity = JSON.parse(await readFile(agent.identityFile, 'utf8')) as { credential: string; certificate?: string; key?: string; caCertificate?: string };
    expect(identity.certificate).toContain('BEGIN CERTIFICATE');
    expect((await stat(agent.identityFile)).mode & 0o777).toBe(0o600);

    // Heartbeats over HTTP through the tunnel; the core sees them.
    await waitFor(() => agent.stats.httpHeartbeats >= 2, { timeoutMs: 10_000, what: 'heartbeats through the gateway' });
    expect(agent.stats.udpSent).toBe(0);
    const seen = await adminOk<{ lastContactVia: string }>(core, 'GET', `/agents/${agent.id}`);
    expect(seen.lastContactVia).toBe('http');

    // The task WebSocket is held through the gateway; a job wakes it there and runs.
    await waitFor(() => agent.tasks?.stats.ws.connected === true, { timeoutMs: 10_000, what: 'task WebSocket through the gateway' });
    const run = await adminOk<{ id: string }>(core, 'POST', '/jobs/greet/runs', { agents: [agent.id] });
    const show = await waitFor(async () => {
      const r = await adminOk<{ counts: Record<string, number>; via: Record<string, number> }>(core, 'GET', `/runs/${run.id}`);
      return r.counts.succeeded === 1 && r;
    }, { timeoutMs: 15_000, what: 'job run through the gateway' });
    expect(show.via).toEqual({ ws: 1 });

    // A package download, from the package server, through the gateway.
    const dest = join(dir, 'downloads');
    const got = await agent.downloadPackage('tool', dest);
    expect(Object.keys(got.fromCodebase)).toEqual([`${ps.url}/packages/${pkg.id}`]);
    for (const [path, b] of Object.entries(FILES)) expect(sha(await readFile(join(dest, ...path.split('/'))))).toBe(sha(b));

    // Everything went through tunnels: to the core, the task server and the package server.
    const targets = new Set(gw.connections().filter((c) => c.principal === agent.id).map((c) => c.target));
    for (const url of [core.url, ps.url]) expect(targets).toContain(new URL(url).host);
    expect(gw.stats().tunnelsTotal).toBeGreaterThanOrEqual(3);

    // Revocation: its tunnels close within 60 s (here ~1 s), its next connection is refused.
    const t0 = Date.now();
    await adminOk(core, 'POST', `/ca/principals/${agent.id}/block`, { reason: 'stolen laptop' });
    const revokedAtGateway = (): boolean => (gw.health().cores as Array<{ revoked: number }>)[0]!.revoked > 0;
    await waitFor(() => revokedAtGateway() && !gw.connections().some((c) => c.principal === agent.id), { timeoutMs: 60_000, what: 'revocation at the gateway, tunnels closed' });
    expect(Date.now() - t0).toBeLessThan(60_000);
    const refused = await openTunnel({ url: gw.url }, new URL(core.url).host, { ca: [identity.caCertificate!], cert: identity.certificate, key: identity.key }, 5_000).then(
      (s) => {
        s.destroy();
        return undefined;
      },
      (err: { code?: string }) => err.code,
    );
    expect(refused).toBe('GATEWAY_CERT_REVOKED');
    // Its bearer credential stops working too, on direct HTTP to the core: refused as blocked.
    const direct = await apiRequest<{ error: { code: string } }>(core.url, identity.credential, 'POST', `/agents/${agent.id}/heartbeat`, {});
    expect(direct.status).toBe(403);
    expect(direct.body.error.code).toBe('CORE_CA_BLOCKED');
  });
});
