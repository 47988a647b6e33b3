import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@outpost/common';
import { PgLeases, PgLevel } from '@outpost/pg-level';
import { metricTotal, parseMetrics, postgresGate, psql, startPostgres, waitFor, type TestPostgres } from '@outpost/testing';
import { LEASE_NAMES, Leases } from '../../src/leases.js';
import { cleanup, enrollAgent, enrollSiteServer, newDataDir, startCore, type TestCore } from './harness.js';

const metrics = async (tc: TestCore) => parseMetrics(await (await fetch(`${tc.url}/metrics`)).text());

describe('leases on a level core', () => {
  afterAll(cleanup);

  it('holds every lease: /health lists them and core_lease_held is 1 for each', async () => {
    const tc = await startCore({ config: { store: { kind: 'level' } } });
    expect((await tc.call('GET', '/health', { token: null })).body.leases).toEqual({ held: LEASE_NAMES });
    const m = await metrics(tc);
    for (const n of LEASE_NAMES) {
      expect(metricTotal(m, 'outpost_core_lease_held', `lease="${n}"`), n).toBe(1);
      expect(metricTotal(m, 'outpost_core_lease_takeovers_total', `lease="${n}"`), n).toBe(1);
    }
  });
});

const gate = postgresGate('core leases on PostgreSQL');
const FIXTURE = fileURLToPath(new URL('../fixtures/core-child.mjs', import.meta.url));
const children: ChildProcess[] = [];

/** A core in its own process (to kill -9), on the given store. */
async function spawnCore(dir: string, config: Record<string, unknown>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [FIXTURE, dir, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => [undefined])])) as [string | undefined];
  if (!line) throw new Error('the core child exited before it served');
  return { child, url: (JSON.parse(line) as { url: string }).url };
}
let pg: TestPostgres | undefined;

describe.runIf(gate.run)('leases on a core on PostgreSQL', () => {
  beforeAll(async () => {
    pg = await startPostgres({ fsync: false });
  }, 120_000);
  afterAll(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await cleanup();
    await pg?.destroy();
  });

  it('a core started after its predecessor was killed -9 takes every lease over within 10 s (default ttl), with new tokens', async () => {
    const table = 'core_killed';
    const store = { kind: 'postgres' as const, url: pg!.url, table };
    const first = await spawnCore(await newDataDir(), { store });
    const health = (await (await fetch(`${first.url}/api/v1/health`)).json()) as { leases: { held: string[] } };
    expect(health.leases.held).toEqual(LEASE_NAMES);
    const before = await psql(pg!, `SELECT string_agg(holder || '#' || token, ',' ORDER BY name) FROM outpost_leases WHERE name LIKE '${table}/%'`);
    first.child.kill('SIGKILL');
    const killedAt = Date.now();
    await once(first.child, 'exit');
    // Its table lock went with its sessions; its leases stay until they expire.
    const tc = await waitFor(() => startCore({ config: { store } }).catch(() => false), { timeoutMs: 8_000, what: 'a core starting on the table' });
    await waitFor(async () => (await tc.call('GET', '/health', { token: null })).body.leases.held.length === LEASE_NAMES.length, { timeoutMs: 12_000, intervalMs: 100, what: 'every lease taken over' });
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    const after = await psql(pg!, `SELECT string_agg(token::text, ',' ORDER BY name) FROM outpost_leases WHERE name LIKE '${table}/%'`);
    expect(after).toBe(before.split(',').map((h) => String(Number(h.split('#')[1]) + 1)).join(','));
    // The dead core held them, named by its pid in its holder id.
    expect(before.split(',').every((h) => h.includes(`:${first.child.pid}:`))).toBe(true);
  });

  it("does not expire runs while another core holds tasks.expiry, and expires them once that holder's lease ran out and this core took it", async () => {
    const table = 'core_leased';
    // Another core holds tasks.expiry for 6 more seconds (the table as PgLeases makes it).
    await psql(pg!, 'CREATE TABLE IF NOT EXISTS outpost_leases (name text PRIMARY KEY, holder text, token bigint NOT NULL DEFAULT 1, expires_at timestamptz NOT NULL)');
    const heldUntil = Date.now() + 6_000;
    await psql(pg!, `INSERT INTO outpost_leases VALUES ('${table}/tasks.expiry', 'other-core:4242:0f0f', 7, now() + interval '6 seconds')`);
    const tc = await startCore({ config: { store: { kind: 'postgres', url: pg!.url, table }, tasks: { tickInterval: 50 }, leases: { ttl: 1_500 } } });
    const health = (await tc.call('GET', '/health', { token: null })).body.leases.held as string[];
    expect(health).not.toContain('tasks.expiry');
    expect(health).toContain('audit.retention');
    expect(metricTotal(await metrics(tc), 'outpost_core_lease_held', 'lease="tasks.expiry"')).toBe(0);

    expect((await tc.call('POST', '/tasks', { body: { name: 'check', kind: 'command', program: 'true' } })).status).toBe(201);
    expect((await tc.call('POST', '/jobs', { body: { name: 'deploy', steps: [{ task: 'check' }] } })).status).toBe(201);
    const agent = await enrollAgent(tc, 'pc-1');
    const run = await tc.call('POST', '/jobs/deploy/runs', { body: { agents: [agent.id], expires: '100ms' } });
    expect(run.status).toBe(201);
    // The run's expiry passes (the test clock moves it far past), ticks come every 50 ms: nothing ends it here.
    tc.clock.advance(60_000);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(Date.now()).toBeLessThan(heldUntil);
    expect((await tc.call('GET', `/runs/${run.body.id}`)).body.state).toBe('active');

    // The other holder's lease runs out: this core takes it at its next renewal and ends the run.
    const ended = await waitFor(async () => {
      const r = await tc.call('GET', `/runs/${run.body.id}`);
      return r.body.state === 'expired' && Date.now();
    }, { timeoutMs: 10_000, what: 'the run expired by this core' });
    expect(ended).toBeGreaterThanOrEqual(heldUntil);
    // Within a renewal (500 ms) and a tick, with room for a busy machine.
    expect(ended - heldUntil).toBeLessThan(3_000);
    expect(await psql(pg!, `SELECT token FROM outpost_leases WHERE name = '${table}/tasks.expiry'`)).toBe('8');
    expect((await tc.call('GET', '/health', { token: null })).body.leases.held).toEqual(LEASE_NAMES);
    expect(metricTotal(await metrics(tc), 'outpost_core_lease_takeovers_total', 'lease="tasks.expiry"')).toBe(1);

    // A clean stop hands every lease over at once.
    await tc.stop();
    expect(await psql(pg!, `SELECT count(*) FROM outpost_leases WHERE name LIKE '${table}/%' AND expires_at >= now()`)).toBe('0');
  });

  it('prunes the audit log only on the core holding audit.retention', async () => {
    const table = 'core_audit_leased';
    await psql(pg!, 'CREATE TABLE IF NOT EXISTS outpost_leases (name text PRIMARY KEY, holder text, token bigint NOT NULL DEFAULT 1, expires_at timestamptz NOT NULL)');
    const heldUntil = Date.now() + 5_000;
    await psql(pg!, `INSERT INTO outpost_leases VALUES ('${table}/audit.retention', 'other-core:4242:0f0f', 3, now() + interval '5 seconds')`);
    const tc = await startCore({ config: { store: { kind: 'postgres', url: pg!.url, table }, audit: { retention: { maxEntries: 2, interval: 50 } }, leases: { ttl: 1_500 } } });
    for (let i = 0; i < 5; i++) expect((await tc.call('POST', '/sites', { body: { name: `s${i}`, subnets: [`10.${i}.0.0/16`] } })).status).toBe(201);
    await new Promise((r) => setTimeout(r, 500));
    expect(Date.now()).toBeLessThan(heldUntil);
    expect((await tc.call('GET', '/audit/verify')).body.entries).toBeGreaterThanOrEqual(5);
    await waitFor(async () => (await tc.call('GET', '/audit/verify')).body.entries === 2, { timeoutMs: 10_000, what: 'pruning once the lease is this core\'s' });
    expect(Date.now()).toBeGreaterThanOrEqual(heldUntil);
  });

  it('re-balances agents over task servers only once it holds registry.rebalance', async () => {
    const table = 'core_rebalance_leased';
    await psql(pg!, 'CREATE TABLE IF NOT EXISTS outpost_leases (name text PRIMARY KEY, holder text, token bigint NOT NULL DEFAULT 1, expires_at timestamptz NOT NULL)');
    const heldUntil = Date.now() + 6_000;
    await psql(pg!, `INSERT INTO outpost_leases VALUES ('${table}/registry.rebalance', 'other-core:4242:0f0f', 1, now() + interval '6 seconds')`);
    const tc = await startCore({ config: { store: { kind: 'postgres', url: pg!.url, table }, leases: { ttl: 1_500 } } });
    const loadOf = async (id: string): Promise<number> => (await tc.call('GET', `/site-servers/${id}`)).body.load.agents;
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } });
    const s1 = await enrollSiteServer(tc, 'ts1', { address: '10.1.0.1/16' });
    for (let i = 0; i < 6; i++) await enrollAgent(tc, `pc-${i}`, { ips: [`10.1.1.${i + 10}/16`] });
    const s2 = await enrollSiteServer(tc, 'ts2', { address: '10.1.0.2/16' });
    await tc.core.registry.settled();
    await new Promise((r) => setTimeout(r, 300));
    expect(Date.now()).toBeLessThan(heldUntil);
    // A second task server joined: the holder (another core) re-balances, not this one.
    expect([await loadOf(s1.id), await loadOf(s2.id)]).toEqual([6, 0]);
    // Taking the lease over, this core re-balances at once (onAcquired).
    await waitFor(async () => (await loadOf(s2.id)) === 3, { timeoutMs: 10_000, what: 're-balanced once the lease is this core\'s' });
    expect(Date.now()).toBeGreaterThanOrEqual(heldUntil);
    expect(await loadOf(s1.id)).toBe(3);
  });

  it('notices at its next renewal that another took a lease, and runs onAcquired work when it takes the lease back', async () => {
    const db = new PgLevel({ connectionString: pg!.url, table: 'renew_kv', poolSize: 2 });
    await db.open();
    const holder = 'core-r:1:bb';
    const leases = new Leases({ holder, ttlMs: 1_500, backend: new PgLeases(db, { holder, ttlMs: 1_500, scope: 'renew' }), log: silentLogger() });
    try {
      await leases.start();
      let resumed = 0;
      leases.onAcquired('tasks.server-runs', () => resumed++);
      expect(resumed).toBe(1);
      await psql(pg!, "UPDATE outpost_leases SET holder = 'thief:9:cc', token = token + 1, expires_at = now() + interval '1 hour' WHERE name = 'renew/tasks.server-runs'");
      await waitFor(async () => !leases.held('tasks.server-runs'), { timeoutMs: 5_000, what: 'the lease seen as lost' });
      expect(leases.held('audit.retention')).toBe(true);
      // The thief stops cleanly: this core takes it at its next renewal, with a new token, and resumes.
      await psql(pg!, "UPDATE outpost_leases SET expires_at = '-infinity' WHERE name = 'renew/tasks.server-runs'");
      await waitFor(async () => leases.held('tasks.server-runs'), { timeoutMs: 5_000, what: 'the lease taken back' });
      expect(leases.token('tasks.server-runs')).toBe(3);
      expect(resumed).toBe(2);
      expect(leases.takeovers['tasks.server-runs']).toBe(2);
    } finally {
      await leases.stop();
      await db.close();
    }
  });

  it('stops counting a lease as held once its ttl passed without a renewal (a stalled core), before the database lets another take it', async () => {
    const db = new PgLevel({ connectionString: pg!.url, table: 'stall_kv', poolSize: 2 });
    await db.open();
    try {
      let t = 0;
      const holder = 'stalled:1:aa';
      const leases = new Leases({ holder, ttlMs: 60_000, backend: new PgLeases(db, { holder, ttlMs: 60_000, scope: 'stall' }), log: silentLogger(), now: () => t });
      await leases.start();
      expect(leases.held('ca.reconcile')).toBe(true);
      expect(leases.token('ca.reconcile')).toBe(1);
      // No renewal got through for a ttl (the loop is stalled: its timer has not fired).
      t += 60_000;
      expect(leases.held('ca.reconcile')).toBe(false);
      expect(leases.token('ca.reconcile')).toBeUndefined();
      // The database still has it as ours (its expiry is later): nobody else runs the work in between.
      expect(await psql(pg!, "SELECT holder FROM outpost_leases WHERE name = 'stall/ca.reconcile' AND expires_at > now()")).toBe(holder);
      await leases.stop();
    } finally {
      await db.close();
    }
  });
});
