import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OutpostAgent } from '@outpost/agent';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { createPackageServer, packageServerConfigSchema, type PackageServer } from '@outpost/package-server';
import type { TaskServer } from '@outpost/task-server';
import { grantFor, metricTotal, parseMetrics, postgresGate, removeDir, startPostgres, tempDir, waitFor, type TestPostgres } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, adminOk, testAgent, testTaskServer } from './fixtures/e2e.js';

/**
 * End to end: the core on a real PostgreSQL, a task server, a package server with a
 * staged package and real agents running a job, all on loopback. PostgreSQL is stopped
 * for 30 s mid-run: the core refuses changes with 503 CORE_STORE_UNAVAILABLE while the
 * site services and agents carry on, and when PostgreSQL is back every status arrives
 * once and nothing the core acknowledged is lost (a second core on the same table reads it).
 */

const gate = postgresGate('store outage e2e');

const AGENTS = 50;
const OUTAGE_MS = 30_000;
/** Generous bounds for a shared 2-core machine: every wait is on a condition. */
const WAIT = 150_000;
const TABLE = 'core_outage_e2e';
/** A "within N ms" claim, scaled by how loaded this (shared) machine is: 1x when it is not. */
const withinMs = (ms: number): number => Math.round(ms * Math.max(1, loadavg()[0]! / cpus().length));

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface RunShow {
  state: string;
  agents: number;
  counts: Record<string, number>;
  hops: Record<string, { count: number }>;
}
interface AgentRunView {
  agent: string;
  state: string;
  steps: Array<{ name: string; state: string; attempt?: number; exitCode?: number; output?: string }>;
}
interface SiteLinkStats {
  id: string;
  state: string;
  enrollments: number;
  lastHeartbeatAt?: number;
  lastError?: string;
}
interface CoreStats {
  tasks: { duplicates: number; applied: number; refused: number; unknown: number };
}

let pg: TestPostgres | undefined;
let dir: string;
let core: Core | undefined;
let ts: TaskServer | undefined;
let ps: PackageServer | undefined;
const agents: OutpostAgent[] = [];

const coreOn = (): Core =>
  createCore(
    validateConfig(
      coreConfigSchema,
      {
        dataDir: join(dir, 'core'),
        http: { host: '127.0.0.1', port: 0 },
        datagram: { host: '127.0.0.1', port: 0 },
        store: { kind: 'postgres', url: pg!.url, table: TABLE },
        tasks: { tickInterval: 200 },
        contactFlushInterval: 200,
        siteServers: { heartbeatInterval: '2s' },
      },
      { file: 'e2e' },
    ),
    { logger: silentLogger() },
  );

/** What the core's `/health` says of its store. */
const storeHealth = async (c: Core): Promise<unknown> => ((await (await fetch(`${c.url}/api/v1/health`)).json()) as { store?: unknown }).store;

/** A gauge or counter of the task server's `/metrics` (its HTTP listener, as Prometheus reads it). */
async function tsMetric(name: string, labels = ''): Promise<number> {
  return metricTotal(parseMetrics(await (await fetch(`${ts!.url}/metrics`)).text()), `outpost_task_server_${name}`, labels);
}

beforeAll(async () => {
  if (!gate.run) return;
  dir = await tempDir('outpost-outage-e2e-');
  pg = await startPostgres({ fsync: false });
}, 120_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
  await ts?.stop().catch(() => undefined);
  await ps?.stop().catch(() => undefined);
  await core?.stop().catch(() => undefined);
  await pg?.destroy();
  if (dir) await removeDir(dir);
}, 120_000);

describe.runIf(gate.run)('PostgreSQL stopped for 30 s under a running job', () => {
  it('cores answer 503 CORE_STORE_UNAVAILABLE, site services and agents carry on, and every status arrives once when it is back', async () => {
    core = coreOn();
    await core.start();
    expect(await storeHealth(core)).toEqual({ kind: 'postgres', reachable: true });

    // A package server with a package staged on it.
    const file = randomBytes(2 * 1024 * 1024 + 5);
    const created = await adminOk<{ id: string }>(core, 'POST', '/packages', { name: 'tools', version: '1', files: [{ path: 'tools.bin', size: file.length, sha256: sha(file) }] });
    await adminOk(core, 'PUT', `/packages/${created.id}/files/tools.bin`, file);
    const psToken = await adminOk<{ token: string }>(core, 'POST', '/tokens', { for: 'site-server', grant: grantFor({ package: { constrained: false } }, { addresses: ['127.0.0.1'] }) });
    ps = createPackageServer(
      validateConfig(
        packageServerConfigSchema,
        { name: 'ps-outage', coreUrl: core.url, dataDir: join(dir, 'ps'), enrollToken: psToken.token, http: { host: '127.0.0.1', port: 0 }, tickle: { host: '127.0.0.1', port: 0 }, retry: { base: '300ms', cap: '2s' }, reserveBytes: 0 },
        { file: 'e2e' },
      ),
    );
    await ps.start();
    await adminOk(core, 'POST', `/packages/${created.id}/enable`, {});
    await waitFor(async () => {
      const v = await adminOk<{ servers: Array<{ state: string }> }>(core!, 'GET', `/packages/${created.id}`);
      return v.servers.length === 1 && v.servers[0]!.state === 'ready';
    }, { timeoutMs: WAIT, what: 'the package staged on the package server' });
    const fileUrl = `${ps.url}/packages/${created.id}/tools.bin`;

    // A task server and the agents it serves.
    const tsToken = await adminOk<{ token: string }>(core, 'POST', '/tokens', { for: 'site-server', grant: grantFor({ task: {} }) });
    ts = testTaskServer({ coreUrl: core.url, dataDir: join(dir, 'ts'), name: 'ts-outage', enrollToken: tsToken.token, agents: { pollInterval: '30m', retickleAfter: '1s' }, forward: { retryBase: '200ms', retryCap: '1s' } });
    await ts.start();
    const agentToken = await adminOk<{ token: string }>(core, 'POST', '/tokens', { for: 'agent', uses: AGENTS });
    await Promise.all(
      Array.from({ length: AGENTS }, async (_, i) => {
        const a = testAgent({ coreUrl: core!.url, dataDir: join(dir, `agent-${i}`), name: `pc-${i}`, enrollToken: agentToken.token, heartbeat: { via: 'http', interval: '2s' }, configPollInterval: '5s', tasks: { reconnectSpread: '300ms' } });
        agents.push(a);
        await a.start();
      }),
    );
    await waitFor(() => agents.every((a) => a.config?.taskServer?.id === ts!.id && (a.tasks?.stats.fetches ?? 0) > 0), { timeoutMs: WAIT, what: 'agents attached to the task server' }).catch((err: unknown) => {
      const where = agents.map((a) => ({ state: a.stats.state, ts: a.config?.taskServer?.id === ts!.id, fetches: a.tasks?.stats.fetches, failures: a.tasks?.stats.fetchFailures }));
      throw new Error(`${(err as Error).message}: ${JSON.stringify(where.filter((w) => !w.ts || !w.fetches))}`);
    });

    // The job: the first step holds until PostgreSQL is down, the second takes 3 s.
    const open = join(dir, 'gate-open');
    await adminOk(core, 'POST', '/tasks', { name: 'hold', kind: 'script', script: `while [ ! -e '${open}' ]; do sleep 0.1; done`, timeout: '3m' });
    await adminOk(core, 'POST', '/tasks', { name: 'work', kind: 'script', script: 'sleep 3; echo worked', timeout: '1m' });
    await adminOk(core, 'POST', '/jobs', { name: 'outage', steps: [{ task: 'hold' }, { task: 'work' }] });
    const run = await adminOk<{ id: string; agents: number }>(core, 'POST', '/jobs/outage/runs', { all: true });
    expect(run.agents).toBe(AGENTS);
    // Every agent is in its first step and every status so far reached the core.
    await waitFor(async () => (await adminOk<RunShow>(core!, 'GET', `/runs/${run.id}`)).counts.running === AGENTS && (await tsMetric('events_pending')) === 0, {
      timeoutMs: WAIT,
      what: 'all agents running, every status so far delivered',
    });
    const heartbeatsBefore = agents.map((a) => a.stats.httpHeartbeats);
    const links = (): SiteLinkStats[] => [ts!.stats().link, ps!.stats().link] as SiteLinkStats[];
    const linksBefore = links();
    expect(linksBefore.map((l) => l.state)).toEqual(['online', 'online']);
    const forwardedBefore = await tsMetric('events_forwarded_total');

    // ---- PostgreSQL stops.
    await pg!.stop();
    const stoppedAt = Date.now();
    const refused = await adminApi<{ error: { code: string } }>(core, 'POST', '/sites', { name: 'branch', subnets: ['10.2.0.0/16'] });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('CORE_STORE_UNAVAILABLE');
    const refusedRun = await adminApi<{ error: { code: string } }>(core, 'POST', '/jobs/outage/runs', { all: true });
    expect(refusedRun.status).toBe(503);
    expect(refusedRun.body.error.code).toBe('CORE_STORE_UNAVAILABLE');
    expect(await storeHealth(core)).toEqual({ kind: 'postgres', reachable: false });

    // The steps go on: every agent finishes the run, its task server takes every status.
    await writeFile(open, '');
    await waitFor(() => agents.every((a) => a.tasks!.stats.runsFinished === 1), { timeoutMs: WAIT, what: 'every agent finished its run during the outage' });
    const finishedAfterMs = Date.now() - stoppedAt;
    // Per agent: step 1 succeeded, step 2 running and succeeded, the run succeeded.
    await waitFor(async () => (await tsMetric('events_pending')) >= AGENTS * 4, { timeoutMs: WAIT, what: 'the statuses queued in the task server' });
    expect(agents.every((a) => a.tasks!.stats.reporter.failures === 0)).toBe(true);
    expect(await tsMetric('events_forwarded_total')).toBe(forwardedBefore);
    expect(await tsMetric('event_forward_failures_total')).toBeGreaterThan(0);
    expect((await fetch(`${ts.url}/api/v1/health`)).status).toBe(200);
    // What the core refused it did not apply: the run it shows is the run it stored.
    expect((await adminOk<RunShow>(core, 'GET', `/runs/${run.id}`)).counts).toMatchObject({ running: AGENTS, succeeded: 0 });

    // The package server serves the staged package: a range, and the whole file.
    const range = await fetch(fileUrl, { headers: { range: 'bytes=1000000-1000999' } });
    expect(range.status).toBe(206);
    expect(Buffer.from(await range.arrayBuffer()).equals(file.subarray(1_000_000, 1_001_000))).toBe(true);
    expect(sha(Buffer.from(await (await fetch(fileUrl)).arrayBuffer()))).toBe(sha(file));
    // An agent downloads it from there; the core cannot take its download status yet (the agent keeps it).
    const download = await agents[0]!.downloadPackage('tools', join(dir, 'download'));
    expect(Object.keys(download.fromCodebase)).toEqual([`${ps.url}/packages/${created.id}`]);
    expect(sha(await readFile(join(dir, 'download', 'tools.bin')))).toBe(sha(file));

    // The agents stay enrolled and keep talking to the core.
    await waitFor(() => agents.every((a, i) => a.stats.httpHeartbeats > heartbeatsBefore[i]!), { timeoutMs: WAIT, what: 'every agent heartbeating during the outage' });
    expect(agents.every((a) => a.stats.state === 'running' && a.stats.enrollments <= 1)).toBe(true);

    const linksDuring = links().map((l) => `${l.state}${l.lastError ? ` (${l.lastError})` : ''}`);
    // Still refused at the end of the 30 s.
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt) - 1_000));
    expect((await adminApi(core, 'POST', '/sites', { name: 'branch', subnets: ['10.2.0.0/16'] })).status).toBe(503);
    expect(await tsMetric('events_pending')).toBeGreaterThanOrEqual(AGENTS * 4);
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt)));

    // ---- PostgreSQL is back.
    await pg!.start();
    const backAt = Date.now();
    const show = await waitFor(async () => {
      const r = await adminOk<RunShow>(core!, 'GET', `/runs/${run.id}`);
      return r.counts.succeeded === AGENTS && r;
    }, { timeoutMs: WAIT, what: 'every status delivered once PostgreSQL is back' });
    const drainedMs = Date.now() - backAt;
    await waitFor(async () => (await tsMetric('events_pending')) === 0, { timeoutMs: WAIT, what: "the task server's outbox emptied" });
    const emptiedMs = Date.now() - backAt;
    const change = await waitFor(async () => {
      const r = await adminApi<{ name: string }>(core!, 'POST', '/sites', { name: 'branch', subnets: ['10.2.0.0/16'] });
      return r.status === 201 && r;
    }, { timeoutMs: WAIT, what: 'changes accepted again' });
    const acceptedMs = Date.now() - backAt;
    // The site servers kept their identities (no enrollment again) and are online at the core.
    const linksAfter = await waitFor(() => {
      const l = links();
      return l.every((x) => x.state === 'online' && x.lastHeartbeatAt !== undefined && x.lastHeartbeatAt > backAt) && l;
    }, { timeoutMs: WAIT, what: 'the site servers online again' });
    expect(linksAfter.map((l) => [l.id, l.enrollments])).toEqual(linksBefore.map((l) => [l.id, l.enrollments]));
    // The agent's download status, kept while the database was away, reached the core.
    await waitFor(async () => (await adminOk<{ downloads: { ok: number } }>(core!, 'GET', `/packages/${created.id}`)).downloads.ok === 1, { timeoutMs: WAIT, what: 'the download status recorded' });
    const reportedMs = Date.now() - backAt;
    expect(await download.reported).toBe(true);
    console.info(`store outage e2e: ${AGENTS} agents finished ${finishedAfterMs} ms into the outage; after PostgreSQL returned: run complete in ${drainedMs} ms, outbox empty in ${emptiedMs} ms, changes accepted in ${acceptedMs} ms, the agent's download status in ${reportedMs} ms; site links during the outage: ${linksDuring.join(', ')}`);
    // The task server sends again at least every second here: the backlog is in within seconds.
    expect(emptiedMs).toBeLessThan(withinMs(15_000));
    expect(change.body.name).toBe('branch');
    expect(await storeHealth(core)).toEqual({ kind: 'postgres', reachable: true });

    expect(show.counts).toMatchObject({ succeeded: AGENTS, failed: 0, running: 0, expired: 0 });
    expect(show.hops.recorded?.count).toBe(AGENTS);

    expect(await tsMetric('events_dropped_total')).toBe(0);

    // Exactly once, per agent: each of its two steps ran once (attempt 0) and succeeded.
    const expectRecords = async (c: Core): Promise<void> => {
      const rows = await adminOk<{ items: AgentRunView[] }>(c, 'GET', `/runs/${run.id}/agents?limit=1000`);
      expect(rows.items.map((r) => r.agent).sort()).toEqual(agents.map((a) => a.id!).sort());
      for (const a of agents) {
        const d = await adminOk<AgentRunView>(c, 'GET', `/runs/${run.id}/agents/${a.id}`);
        expect(d.steps.map((s) => [s.name, s.state, s.attempt, s.exitCode])).toEqual([
          ['hold', 'succeeded', 0, 0],
          ['work', 'succeeded', 0, 0],
        ]);
        expect(d.steps[1]!.output, `step output of ${a.id}`).toBe('worked\n');
      }
    };
    await expectRecords(core);
    // Each status was applied once: what the core refused (503) it had not applied, so its redelivery is no duplicate.
    expect((await adminOk<CoreStats>(core, 'GET', '/stats')).tasks).toMatchObject({ duplicates: 0, refused: 0, unknown: 0 });

    // Nothing acknowledged was lost: another core on the same table reads the same run.
    await core.stop();
    core = coreOn();
    await core.start();
    const reread = await adminOk<RunShow>(core, 'GET', `/runs/${run.id}`);
    expect(reread.counts).toMatchObject({ succeeded: AGENTS, failed: 0, running: 0 });
    await expectRecords(core);
    expect((await adminOk<{ items: Array<{ name: string }> }>(core, 'GET', '/sites')).items.map((s) => s.name)).toEqual(['branch']);
    expect((await adminOk<{ downloads: { ok: number } }>(core, 'GET', `/packages/${created.id}`)).downloads.ok).toBe(1);
  }, 480_000);
});
