// Clients of several cores (issue #16): common's CoreJsonClient, the site link and a task
// server given a list of core URLs move past a dead core and one whose store is down, stay
// on the core that answered, and keep their identity when a core URL is added.
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { CoreJsonClient, OutpostError, silentLogger, validateConfig, type CoreErrorAnswer, type CoreUnreachable } from '@outpost/common';
import { createSiteLink } from '@outpost/common/site-link';
import { createGateway, gatewayConfigSchema, type Gateway } from '@outpost/gateway';
import type { Core } from '@outpost/core';
import { freePort, grantFor, removeDir, tempDir, waitFor } from '@outpost/testing';
import { adminApi, adminOk, cleanupAfterEach, testAgent, testCore, testTaskServer } from './fixtures/e2e.js';

let dir: string;
let core: Core;
/** A port nothing listens on. */
let dead: string;
/** A node:http server that answers every call 503 CORE_STORE_UNAVAILABLE, as a core whose store is down does. */
let storeDown: { url: string; calls: number; server: Server };
const cleanup = cleanupAfterEach();

/** A client whose errors carry the structured failure, so the tests can look at it. */
const client = (coreUrls: string[]): CoreJsonClient =>
  new CoreJsonClient({
    coreUrls,
    timeoutMs: 5_000,
    errors: {
      unreachable: (f: CoreUnreachable) => new OutpostError('TEST_UNREACHABLE', `cannot reach the core at ${f.coreUrl} (${f.why})`, { details: { tried: f.tried } }),
      answer: (f: CoreErrorAnswer) => new OutpostError('TEST_ANSWER', `${f.status} ${f.code ?? ''}`, { details: { status: f.status, coreUrl: f.coreUrl } }),
    },
  });

async function failure(p: Promise<unknown>): Promise<OutpostError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutpostError);
  return err as OutpostError;
}

async function startStoreDown(): Promise<{ url: string; calls: number; server: Server }> {
  const s = { url: '', calls: 0, server: createServer() };
  s.server.on('request', (req, res) => {
    s.calls++;
    req.resume();
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'CORE_STORE_UNAVAILABLE', message: 'the store cannot be reached' } }));
  });
  s.server.listen(0, '127.0.0.1');
  await once(s.server, 'listening');
  const a = s.server.address();
  s.url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  return s;
}

beforeEach(async () => {
  dir = await tempDir('outpost-client-failover-');
  core = testCore(join(dir, 'core'));
  await core.start();
  dead = `http://127.0.0.1:${await freePort()}`;
  storeDown = await startStoreDown();
  cleanup(async () => {
    storeDown.server.closeAllConnections();
    storeDown.server.close();
    await core.stop();
    await removeDir(dir);
  });
});

describe('CoreJsonClient over several core URLs', () => {
  it('moves past a dead core and one answering 503, lands on the live core and stays there', async () => {
    const c = client([dead, storeDown.url, core.url]);
    expect(c.currentUrl).toBe(dead);
    expect(await c.call<{ status: string }>('GET', '/health')).toMatchObject({ status: 'ok' });
    expect(c.currentUrl).toBe(core.url);
    expect(c.failovers).toBe(1);
    expect(storeDown.calls).toBe(1);
    for (let i = 0; i < 5; i++) await c.call('GET', '/health');
    expect(storeDown.calls).toBe(1); // sticky: the healthy core keeps the traffic
    expect(c.failovers).toBe(1);
    expect(c.apiBase).toBe(`${core.url}/api/v1`);
  });

  it('gives an error naming each URL and why when every core fails', async () => {
    const c = client([dead, storeDown.url]);
    const err = await failure(c.call('GET', '/health'));
    expect(err.code).toBe('TEST_UNREACHABLE');
    expect(err.details?.tried).toEqual([
      { url: dead, why: 'ECONNREFUSED' },
      { url: storeDown.url, why: 'answered 503 CORE_STORE_UNAVAILABLE' },
    ]);
    expect(err.message).toContain(`${dead}: ECONNREFUSED`);
    expect(err.message).toContain(`${storeDown.url}: answered 503 CORE_STORE_UNAVAILABLE`);
    expect(c.failovers).toBe(0);
  });

  it("hands on the core's own refusal (a 4xx) without trying another core", async () => {
    const c = client([core.url, storeDown.url]);
    const err = await failure(c.call('GET', '/sites')); // no bearer: 401
    expect(err.details).toMatchObject({ status: 401, coreUrl: core.url });
    expect(storeDown.calls).toBe(0);
  });
});

describe('site servers with several core URLs', () => {
  it('keeps the identity made with one URL when a second core URL is added (no new enrollment)', async () => {
    const grant = grantFor({ netboot: {} });
    const mint = async (): Promise<string> => (await core.createEnrollmentToken({ for: 'site-server', grant })).token;
    const options = { dataDir: join(dir, 'ss'), name: 'ss-1', log: silentLogger(), token: { mint }, services: () => ({ netboot: {} }), reenrollWhenCoreMoves: true };
    const first = createSiteLink({ ...options, coreUrl: core.url });
    cleanup(() => first.stop());
    await first.start();
    const id = first.id!;
    await first.stop();

    const again = createSiteLink({ ...options, coreUrl: [storeDown.url, core.url, dead] });
    cleanup(() => again.stop());
    await again.start();
    expect(again.id).toBe(id);
    expect(again.stats()).toMatchObject({ state: 'online', enrollments: 0, coreUrl: core.url, coreFailovers: 1 });
    expect((await adminApi<{ items: Array<{ id: string }> }>(core, 'GET', '/site-servers')).body.items.map((s) => s.id)).toEqual([id]);
  });

  it('a task server configured [dead core, live core] enrolls, heartbeats and keeps its identity across a restart', async () => {
    const { token } = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ task: {} }) });
    const ts = testTaskServer({ coreUrl: [dead, core.url], dataDir: join(dir, 'ts'), name: 'ts-1', enrollToken: token });
    cleanup(() => ts.stop());
    await ts.start();
    const id = ts.id;
    expect(id).toMatch(/^ss_/);
    await waitFor(async () => (await adminApi<{ state: string }>(core, 'GET', `/site-servers/${id}`)).body.state === 'online', { timeoutMs: 10_000 });
    await ts.stop();

    const again = testTaskServer({ coreUrl: [core.url, dead], dataDir: join(dir, 'ts'), name: 'ts-1' });
    cleanup(() => again.stop());
    await again.start();
    expect(again.id).toBe(id);
  });
});

describe('an agent with several core URLs', () => {
  it('configured [dead core, live core]: enrolls, heartbeats over UDP to the live core and runs a job', async () => {
    const { token: ssToken } = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ task: {} }) });
    const ts = testTaskServer({ coreUrl: [dead, core.url], dataDir: join(dir, 'ts'), name: 'ts-1', enrollToken: ssToken });
    cleanup(() => ts.stop());
    await ts.start();
    const { token } = await core.createEnrollmentToken({ for: 'agent', uses: 1 });
    const agent = testAgent({
      coreUrl: [dead, core.url],
      dataDir: join(dir, 'agent'),
      name: 'pc-1',
      enrollToken: token,
      heartbeat: { via: 'auto', interval: '300ms', udpAckTimeout: '300ms' },
    });
    cleanup(() => agent.stop());
    await agent.start();
    expect(agent.id).toMatch(/^ag_/);
    expect(agent.stats.enrollments).toBe(1);
    await waitFor(() => agent.stats.udpAcked >= 2, { timeoutMs: 20_000, what: 'two UDP heartbeat acks from the live core' });
    expect(agent.stats.transport).toBe('udp');
    expect(agent.stats).toMatchObject({ coreUrl: core.url, coreFailovers: 1 });
    const view = await waitFor(async () => {
      const v = (await adminApi<{ state: string; lastContactVia?: string }>(core, 'GET', `/agents/${agent.id}`)).body;
      return v.lastContactVia === 'udp' && v;
    }, { timeoutMs: 20_000, what: 'the core to see a UDP contact' });
    expect(view.state).toBe('online');
    await waitFor(() => agent.config?.taskServer?.id === ts.id && (agent.tasks?.stats.fetches ?? 0) > 0, { timeoutMs: 20_000, what: 'the agent attached to the task server' });

    await adminOk(core, 'POST', '/tasks', { name: 'hello', kind: 'command', program: 'echo', args: ['failed over'] });
    await adminOk(core, 'POST', '/jobs', { name: 'greet', steps: [{ task: 'hello' }] });
    const run = await adminOk<{ id: string }>(core, 'POST', '/jobs/greet/runs', { agents: [agent.id] });
    await waitFor(async () => (await adminOk<{ counts: Record<string, number> }>(core, 'GET', `/runs/${run.id}`)).counts.succeeded === 1, {
      timeoutMs: 30_000,
      what: 'the run succeeded',
    });
    const detail = await adminOk<{ steps: Array<{ state: string; output?: string }> }>(core, 'GET', `/runs/${run.id}/agents/${agent.id}`);
    expect(detail.steps.map((st) => [st.state, st.output])).toEqual([['succeeded', 'failed over\n']]);
  });
});

describe('a gateway with several core URLs', () => {
  const gateway = (url: string[], enrollToken?: string): Gateway => {
    const gw = createGateway(
      validateConfig(
        gatewayConfigSchema,
        {
          name: 'gw-1',
          dataDir: join(dir, 'gw'),
          listen: { host: '127.0.0.1', port: 0 },
          metrics: { host: '127.0.0.1', port: 0 },
          cores: [{ url, ...(enrollToken ? { enrollToken } : {}) }],
          refreshInterval: '200ms',
          reportInterval: '200ms',
        },
        { file: 'client-failover' },
      ),
      { logger: silentLogger(), processMetrics: false },
    );
    cleanup(() => gw.stop());
    return gw;
  };

  it('enrolls and syncs past a dead core and one answering 503, and keeps its identity when the list is reordered', async () => {
    const { token } = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ gateway: { url: 'https://127.0.0.1:1' } }, { names: ['localhost'] }) });
    const first = gateway([dead, storeDown.url, core.url], token);
    await first.start();
    const cores = (first.health() as { cores: Array<Record<string, unknown>> }).cores;
    expect(cores[0]).toMatchObject({ linked: true, stale: false, routes: 1, coreUrl: core.url, failovers: 1 });
    const listed = async (): Promise<string[]> => (await adminApi<{ items: Array<{ id: string }> }>(core, 'GET', '/site-servers')).body.items.map((s) => s.id);
    const ids = await listed();
    expect(ids).toHaveLength(1);
    await first.stop();

    const again = gateway([core.url, dead]); // no token: it must find its identity
    await again.start();
    expect((again.health() as { cores: Array<Record<string, unknown>> }).cores[0]).toMatchObject({ linked: true, stale: false, coreUrl: core.url, failovers: 0 });
    expect(await listed()).toEqual(ids);
  });
});
