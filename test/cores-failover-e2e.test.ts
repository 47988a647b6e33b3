import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger, validateConfig } from '@outpost/common';
import { LEASE_NAMES } from '@outpost/core';
import { createTaskSwarm, type TaskSwarm } from '@outpost/agent';
import { createPackageServer, packageServerConfigSchema, type PackageServer } from '@outpost/package-server';
import type { TaskServer } from '@outpost/task-server';
import { grantFor, postgresGate, removeDir, startPostgres, tempDir, waitFor, type TestPostgres } from '@outpost/testing';
import { adminOk, apiFetch, testTaskServer } from './fixtures/e2e.js';

/**
 * Issue 16's fault: two cores on one PostgreSQL, one killed -9 in the middle of a job on
 * 1,000 simulated agents and of a package staging to three package servers. The task
 * server and the package servers know both cores' URLs; the agents talk to their task
 * server. Every wait is bounded; the test stops by itself.
 */

const gate = postgresGate('two cores on one PostgreSQL, one killed -9 mid-job and mid-staging');
const AGENTS = 1_000;
const WAIT = 120_000;
const CHILD = fileURLToPath(new URL('../packages/core/test/fixtures/core-child.mjs', import.meta.url));

interface CoreChild {
  child: ChildProcess;
  url: string;
  adminToken: string;
}

const children: ChildProcess[] = [];
const stops: Array<() => Promise<unknown>> = [];
const dirs: string[] = [];
let pg: TestPostgres | undefined;

async function spawnCore(dir: string, config: Record<string, unknown>): Promise<CoreChild> {
  const child = spawn(process.execPath, [CHILD, dir, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => [undefined])])) as [string | undefined];
  if (!line) throw new Error('a core child exited before it served');
  return { child, ...(JSON.parse(line) as { url: string; adminToken: string }) };
}

const dir = async (name: string): Promise<string> => {
  const d = await tempDir(`outpost-ha-${name}-`);
  dirs.push(d);
  return d;
};

afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) await removeDir(d);
  await pg?.destroy();
}, 60_000);

interface RunShow {
  state: string;
  agents: number;
  counts: Record<string, number>;
}
interface AgentDetail {
  state: string;
  steps: Array<{ name: string; state: string; attempt?: number }>;
}
interface PackageView {
  servers: Array<{ name: string; state: string }>;
}

describe.runIf(gate.run)('several cores: one killed -9 mid-job and mid-staging', () => {
  it(`every one of ${AGENTS} agents' steps finish once, every status arrives once, staging to three package servers completes, and the surviving core holds every lease within 10 s`, async () => {
    pg = await startPostgres({ fsync: false });
    const content = await dir('content');
    const config = { store: { kind: 'postgres', url: pg.url, table: 'ha' }, packages: { contentDir: content }, tasks: { tickInterval: 200 }, contactFlushInterval: 500, siteServers: { heartbeatInterval: '2s' } };
    const a = await spawnCore(await dir('core-a'), config);
    const b = await spawnCore(await dir('core-b'), config);
    expect(b.adminToken).toBe(a.adminToken);
    const urls = [a.url, b.url];

    // A task server and three package servers that know both cores.
    const tsToken = await adminOk<{ token: string }>(a, 'POST', '/tokens', { for: 'site-server', grant: grantFor({ task: {} }) });
    const ts: TaskServer = testTaskServer({
      coreUrl: urls,
      dataDir: await dir('ts'),
      name: 'ts-ha',
      enrollToken: tsToken.token,
      agents: { pollInterval: '30m', retickleAfter: '1s' },
      // Small batches: the statuses reach the core over seconds, so the kill lands among them.
      forward: { retryBase: '100ms', retryCap: '500ms', batchSize: 40 },
    });
    await ts.start();
    stops.push(() => ts.stop());
    const pss: PackageServer[] = [];
    for (let i = 0; i < 3; i++) {
      const address = `10.9.${i}.5/24`;
      const tok = await adminOk<{ token: string }>(a, 'POST', '/tokens', { for: 'site-server', grant: grantFor({ package: { constrained: false } }, { address, addresses: ['127.0.0.1'] }) });
      const ps = createPackageServer(
        validateConfig(
          packageServerConfigSchema,
          {
            name: `ps-${i}`,
            coreUrl: urls,
            dataDir: await dir(`ps-${i}`),
            constrained: false,
            enrollToken: tok.token,
            address,
            http: { host: '127.0.0.1', port: 0 },
            tickle: { host: '127.0.0.1', port: 0 },
            retry: { base: '300ms', cap: '2s' },
            // Slow enough that the staging is under way when the core is killed.
            bandwidth: { staging: 4 * 1024 * 1024 },
            reserveBytes: 0,
            timeout: '5s',
          },
          { file: '<test>' },
        ),
        { logger: createLogger({ level: 'error', pretty: false }) },
      );
      await ps.start();
      stops.push(() => ps.stop());
      pss.push(ps);
    }

    // 1,000 simulated agents, woken by UDP tickles, reporting every step to the task server.
    const enrollToken = await adminOk<{ token: string }>(a, 'POST', '/tokens', { for: 'agent', uses: AGENTS });
    const swarm: TaskSwarm = createTaskSwarm({ coreUrl: a.url, enrollToken: enrollToken.token, count: AGENTS, namePrefix: 'ha', concurrency: 32, udpSockets: 8 });
    stops.push(() => swarm.close());
    const enrolled = await swarm.enroll();
    expect(enrolled.enrolled).toBe(AGENTS);
    // The task server learns a burst of new agents from one listing: a change to its record
    // makes the core tell it (CONFIG tickle). Then the agents say where they listen for tickles.
    await adminOk(a, 'PATCH', `/site-servers/${ts.id}`, { name: 'ts-ha-1' });
    await waitFor(() => (ts.stats() as { agents: number }).agents === AGENTS, { timeoutMs: 30_000, what: 'the task server knowing every agent' });
    const attached = await swarm.attach('tickle');
    expect(attached.attached).toBe(AGENTS);

    await adminOk(a, 'POST', '/tasks', { name: 'first', kind: 'command', program: 'true' });
    await adminOk(a, 'POST', '/tasks', { name: 'second', kind: 'command', program: 'true' });
    await adminOk(a, 'POST', '/jobs', { name: 'ha-job', steps: [{ task: 'first' }, { task: 'second' }] });
    const big = randomBytes(12 * 1024 * 1024);
    const pkg = await adminOk<{ id: string }>(a, 'POST', '/packages', { name: 'ha-pkg', version: '1', files: [{ path: 'big.bin', size: big.length, sha256: createHash('sha256').update(big).digest('hex') }] });
    expect((await apiFetch(a.url, a.adminToken, 'PUT', `/packages/${pkg.id}/files/big.bin`, big)).status).toBe(200);

    const done = swarm.awaitRun('ha-job', WAIT);
    const run = await adminOk<{ id: string; agents: number }>(a, 'POST', '/jobs/ha-job/runs', { all: true });
    expect(run.agents).toBe(AGENTS);
    await adminOk(a, 'POST', `/packages/${pkg.id}/enable`, {});

    // Kill core A once both are under way: some statuses recorded, some bytes staged.
    await waitFor(async () => {
      const r = await adminOk<RunShow>(a, 'GET', `/runs/${run.id}`);
      return r.counts.succeeded! + r.counts.running! > 0;
    }, { timeoutMs: WAIT, what: 'the run under way on core A' });
    const atKill = await adminOk<RunShow>(a, 'GET', `/runs/${run.id}`);
    const stagingAtKill = await adminOk<PackageView>(a, 'GET', `/packages/${pkg.id}`);
    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    await once(a.child, 'exit');

    // B holds every lease within 10 s of the kill.
    const tookOver = await waitFor(async () => {
      const h = (await (await fetch(`${b.url}/api/v1/health`)).json()) as { leases: { held: string[] } };
      return LEASE_NAMES.every((n) => h.leases.held.includes(n)) && Date.now();
    }, { timeoutMs: 30_000, what: 'core B holding every lease' });
    expect(tookOver - killedAt).toBeLessThan(10_000);

    const result = await done;
    expect(result.reported, JSON.stringify({ errors: result.errors, tickles: result.tickles, fetched: result.fetchedAt.filter((t) => t > 0).length, ts: ts.stats() })).toBe(AGENTS);
    const show = await waitFor(async () => {
      const r = await adminOk<RunShow>(b, 'GET', `/runs/${run.id}`);
      return r.counts.succeeded === AGENTS && r;
    }, { timeoutMs: WAIT, what: `every agent's status on core B` });
    expect(show.state).toBe('finished');
    expect(Object.values(show.counts).reduce((x, y) => x + y, 0)).toBe(AGENTS);

    // Each agent ran each step once: one attempt each, both succeeded.
    const agents = await adminOk<{ items: Array<AgentDetail & { agent: string }> }>(b, 'GET', `/runs/${run.id}/agents?limit=${AGENTS}`);
    expect(agents.items).toHaveLength(AGENTS);
    const notOnce = agents.items.filter((d) => d.state !== 'succeeded' || d.steps.length !== 2 || d.steps.some((s) => s.state !== 'succeeded' || s.attempt !== 0));
    expect(notOnce.slice(0, 3)).toEqual([]);
    // Core B took the statuses A did not live to record.
    expect(atKill.counts.succeeded).toBeLessThan(AGENTS);
    const bTasks = (await adminOk<{ tasks: { applied: number } }>(b, 'GET', '/stats')).tasks;
    expect(bTasks.applied).toBeGreaterThan(0);
    // Every status arrived once: nothing the task server sent was refused, and none is left to send.
    const outbox = (ts.stats() as { outbox: { pending: number; refusedByCore: number; rejectedByCore: number } }).outbox;
    expect(outbox).toMatchObject({ pending: 0, refusedByCore: 0, rejectedByCore: 0 });

    // The staging finished on all three package servers, fed by core B after A died.
    const staged = await waitFor(async () => {
      const v = await adminOk<PackageView>(b, 'GET', `/packages/${pkg.id}`);
      return v.servers.length === 3 && v.servers.every((s) => s.state === 'ready') && v;
    }, { timeoutMs: WAIT, what: 'the package ready on three package servers' });
    expect(staged.servers.map((s) => s.name).sort()).toEqual(['ps-0', 'ps-1', 'ps-2']);
    // It was under way, not done, when core A died.
    expect(stagingAtKill.servers.filter((s) => s.state === 'ready').length).toBeLessThan(3);
    for (const ps of pss) {
      const r = await fetch(`${ps.url}/packages/${pkg.id}/big.bin`);
      expect(createHash('sha256').update(Buffer.from(await r.arrayBuffer())).digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
    }
    console.log(`cores failover e2e: core A killed with ${atKill.counts.succeeded}/${AGENTS} agents recorded; core B held every lease ${tookOver - killedAt} ms later, applied ${bTasks.applied} status events; ${AGENTS} agents succeeded once; staging done on 3 package servers`);
  }, 400_000);
});
