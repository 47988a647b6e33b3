import { describe, expect, it } from 'vitest';
import { metricTotal, parseMetrics, psql, startPostgres, waitFor, type TestPostgres } from '@outpost/testing';
import { enrollAgent, newDataDir, postgresForFile, startCore } from './harness.js';

const { gate, pg } = postgresForFile('core on PostgreSQL');

describe.runIf(gate.run)('the core on PostgreSQL (core.store.kind: postgres)', () => {
  it('keeps sites, agents, administrators and runs in PostgreSQL across a restart, and says so in /health', async () => {
    const store = { kind: 'postgres' as const, url: pg().url, table: 'core_restart' };
    const dir = await newDataDir();
    const a = await startCore({ dir, config: { store } });
    expect((await a.call('GET', '/health', { token: null })).body.store).toEqual({ kind: 'postgres', reachable: true });
    await a.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } });
    const agent = await enrollAgent(a, 'pc-1', { ips: ['10.1.0.5'] });
    expect((await a.call('POST', '/admins', { body: { name: 'vera', roles: ['viewer'] } })).status).toBe(201);
    // Its figures are in /metrics: statements, their time, the pool, the journal.
    const m = parseMetrics(await (await fetch(`${a.url}/metrics`)).text());
    expect(metricTotal(m, 'outpost_core_store_queries_total', 'outcome="ok"')).toBeGreaterThan(5);
    expect(metricTotal(m, 'outpost_core_store_query_seconds_total')).toBeGreaterThan(0);
    expect(metricTotal(m, 'outpost_core_store_pool_connections', 'state="total"')).toBeGreaterThan(0);
    expect(metricTotal(m, 'outpost_core_store_journal_seq')).toBeGreaterThan(0);
    // The rows are in PostgreSQL, under the core's table.
    expect(Number(await psql(pg(), 'SELECT count(*) FROM core_restart'))).toBeGreaterThan(5);
    expect(await psql(pg(), 'SELECT max(version) FROM outpost_schema_migrations WHERE tbl = \'core_restart\'')).toBe('2');
    // Every change is in the journal the other cores read.
    expect(Number(await psql(pg(), 'SELECT count(*) FROM core_restart_journal'))).toBeGreaterThan(3);
    await a.stop();

    const b = await startCore({ dir, config: { store } });
    expect((await b.call('GET', '/sites')).body.items.map((s: { name: string }) => s.name)).toEqual(['hq']);
    expect((await b.call('GET', `/agents/${agent.id}`)).body).toMatchObject({ name: 'pc-1', sites: ['hq'] });
    expect((await b.call('GET', '/admins/vera')).body.roles).toEqual(['viewer']);
    // The agent's credential still works against the restarted core.
    expect((await b.call('GET', `/agents/${agent.id}/config`, { token: agent.credential })).status).toBe(200);
  });

  it('answers 503 CORE_STORE_UNAVAILABLE to changes while PostgreSQL is down, keeps serving reads, and carries on when it is back', async () => {
    const tc = await startCore({ config: { store: { kind: 'postgres', url: pg().url, table: 'core_outage' } } });
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } });
    await pg().stop();
    try {
      const refused = await tc.call('POST', '/sites', { body: { name: 'branch', subnets: ['10.2.0.0/16'] } });
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('CORE_STORE_UNAVAILABLE');
      expect(refused.headers.get('retry-after')).toBe('5');
      expect((await tc.call('GET', '/health', { token: null })).body.store).toEqual({ kind: 'postgres', reachable: false });
      // What the core holds in memory is still served.
      expect((await tc.call('GET', '/sites')).body.items.map((s: { name: string }) => s.name)).toEqual(['hq']);
    } finally {
      await pg().start();
    }
    const again = await waitFor(async () => {
      const r = await tc.call('POST', '/sites', { body: { name: 'branch', subnets: ['10.2.0.0/16'] } });
      return r.status === 201 && r;
    }, { timeoutMs: 20_000, what: 'changes accepted again once PostgreSQL is back' });
    expect(again.body.name).toBe('branch');
    expect(await psql(pg(), "SELECT count(*) FROM core_outage WHERE convert_from(key, 'UTF8') LIKE '%branch%'")).not.toBe('0');
  });

  it('follows a promoted standby: multi-host URL with target_session_attrs=read-write, changes 503 in between, nothing acknowledged lost', async () => {
    const primary = await startPostgres({ fsync: false });
    let standby: TestPostgres | undefined;
    try {
      standby = await startPostgres({ fsync: false, standbyOf: primary });
      const url = `postgres://outpost@127.0.0.1:${primary.port},127.0.0.1:${standby.port}/outpost?target_session_attrs=read-write`;
      const tc = await startCore({ config: { store: { kind: 'postgres', url, table: 'core_failover' } } });
      for (let i = 0; i < 5; i++) expect((await tc.call('POST', '/sites', { body: { name: `s${i}`, subnets: [`10.${i}.0.0/16`] } })).status).toBe(201);
      // The standby has what the primary acknowledged (streaming; waited for, bounded).
      await waitFor(async () => Number(await psql(standby!, 'SELECT count(*) FROM core_failover').catch(() => '0')) >= 5, { timeoutMs: 20_000, what: 'the standby to catch up' });
      await primary.stop();
      expect((await tc.call('POST', '/sites', { body: { name: 'during', subnets: ['10.50.0.0/16'] } })).status).toBe(503);
      await standby.promote();
      const after = await waitFor(async () => {
        const r = await tc.call('POST', '/sites', { body: { name: 'after', subnets: ['10.60.0.0/16'] } });
        return r.status === 201 && r;
      }, { timeoutMs: 30_000, what: 'changes accepted on the promoted standby' });
      expect(after.body.name).toBe('after');
      // On the new primary: everything acknowledged before, and the change after; not the refused one.
      const names = (await psql(standby, "SELECT convert_from(key, 'UTF8') FROM core_failover WHERE convert_from(key, 'UTF8') LIKE '%!sites!%'")).split('\n');
      for (const n of ['s0', 's4', 'after']) expect(names.some((k) => k.endsWith(`!${n}`)), n).toBe(true);
      expect(names.some((k) => k.endsWith('!during'))).toBe(false);
      expect((await tc.call('GET', '/health', { token: null })).body.store).toEqual({ kind: 'postgres', reachable: true });
      await tc.stop();
    } finally {
      await standby?.destroy();
      await primary.destroy();
    }
  }, 120_000);

  it('names the server, not the password, when PostgreSQL cannot be reached at start', async () => {
    const url = `postgres://outpost:s3cret-pw@127.0.0.1:${pg().port + 1}/outpost?connect_timeout=2`;
    const err = await startCore({ config: { store: { kind: 'postgres', url } } }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
    expect(err?.code).toBe('CORE_STORE_UNREACHABLE');
    expect(err?.message).toContain(`127.0.0.1:${pg().port + 1}`);
    expect(err?.message).not.toContain('s3cret-pw');
  });
});
