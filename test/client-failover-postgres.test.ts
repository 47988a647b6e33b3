// Clients of two active cores on one PostgreSQL (issue #16): when the core an agent talks
// to stops, its calls move to the other core URL, its UDP heartbeats follow to that core's
// datagram endpoint, and it never enrolls again.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { grantFor, postgresGate, removeDir, startPostgres, tempDir, waitFor, type TestPostgres } from '@outpost/testing';
import { adminApi, cleanupAfterEach, testAgent, testTaskServer } from './fixtures/e2e.js';

const gate = postgresGate('clients of two cores on one PostgreSQL');
let pg: TestPostgres | undefined;
let table = 0;
const cleanup = cleanupAfterEach();

beforeAll(async () => {
  if (gate.run) pg = await startPostgres({ fsync: false });
}, 120_000);
afterAll(async () => {
  await pg?.destroy();
});

/** A core (started) on the shared table, HTTP and datagrams on 127.0.0.1, each on a port of its own. */
async function sharedCore(dir: string, name: string, tableName: string): Promise<Core> {
  const core = createCore(
    validateConfig(
      coreConfigSchema,
      {
        dataDir: join(dir, name),
        http: { host: '127.0.0.1', port: 0 },
        datagram: { host: '127.0.0.1', port: 0 },
        store: { kind: 'postgres', url: pg!.url, table: tableName },
        siteServers: { heartbeatInterval: '500ms' },
      },
      { file: 'client-failover-postgres' },
    ),
    { logger: silentLogger() },
  );
  await core.start();
  cleanup(() => core.stop());
  return core;
}

describe.runIf(gate.run)('an agent of two cores on one PostgreSQL', () => {
  it('moves to the other core when its core stops: calls, UDP heartbeats to that core\'s datagram port, no new enrollment', async () => {
    const dir = await tempDir('outpost-client-failover-pg-');
    cleanup(() => removeDir(dir));
    const tableName = `client_failover_${table++}`;
    const a = await sharedCore(dir, 'core-a', tableName);
    const b = await sharedCore(dir, 'core-b', tableName);
    expect(b.datagramPort).not.toBe(a.datagramPort);
    const { token } = await a.createEnrollmentToken({ for: 'agent', uses: 1 });
    const agent = testAgent({
      coreUrl: [a.url, b.url],
      dataDir: join(dir, 'agent'),
      name: 'pc-1',
      enrollToken: token,
      heartbeat: { via: 'auto', interval: '300ms', udpAckTimeout: '300ms', udpAttempts: 1, udpRetryEvery: 1 },
      tasks: { enabled: false },
      // No periodic config poll in the test's time: the new core's config (its datagram port) is fetched because of the failover.
      configPollInterval: '1h',
    });
    cleanup(() => agent.stop());
    await agent.start();
    await waitFor(() => agent.stats.udpAcked >= 2, { timeoutMs: 20_000, what: 'UDP heartbeat acks from core A' });
    expect(agent.stats).toMatchObject({ coreUrl: a.url, coreFailovers: 0, enrollments: 1 });

    await a.stop();
    const acked = agent.stats.udpAcked;
    await waitFor(() => agent.stats.coreUrl === b.url && agent.stats.udpAcked >= acked + 2, { timeoutMs: 30_000, what: 'UDP heartbeat acks from core B' });
    expect(agent.stats).toMatchObject({ coreFailovers: 1, enrollments: 1 });
    const view = await waitFor(async () => {
      const v = (await adminApi<{ state: string; lastContactVia?: string }>(b, 'GET', `/agents/${agent.id}`)).body;
      return v.lastContactVia === 'udp' && v.state === 'online' && v;
    }, { timeoutMs: 20_000, what: 'core B to see the agent online over UDP' });
    expect(view.state).toBe('online');
  });

  it('a task server moves its heartbeats to the other core when its core stops, keeping its identity', async () => {
    const dir = await tempDir('outpost-client-failover-pg-');
    cleanup(() => removeDir(dir));
    const tableName = `client_failover_${table++}`;
    const a = await sharedCore(dir, 'core-a', tableName);
    const b = await sharedCore(dir, 'core-b', tableName);
    const { token } = await a.createEnrollmentToken({ for: 'site-server', grant: grantFor({ task: {} }) });
    const ts = testTaskServer({ coreUrl: [a.url, b.url], dataDir: join(dir, 'ts'), name: 'ts-1', enrollToken: token });
    cleanup(() => ts.stop());
    await ts.start();
    const id = ts.id;
    await a.stop();
    // A sync (the task server's calls to the core) goes to B now, and so do the heartbeats that follow.
    await ts.syncNow();
    expect(ts.stats().link).toMatchObject({ coreUrl: b.url, coreFailovers: 1, enrollments: 1 }); // the one enrollment, at A
    const beats = (ts.stats().link as { heartbeats: number }).heartbeats;
    await waitFor(() => (ts.stats().link as { heartbeats: number; state: string }).heartbeats > beats && (ts.stats().link as { state: string }).state === 'online', {
      timeoutMs: 20_000,
      what: 'a heartbeat accepted by core B',
    });
    expect(ts.id).toBe(id);
    expect((await adminApi<{ items: Array<{ id: string }> }>(b, 'GET', '/site-servers')).body.items.map((x) => x.id)).toEqual([id]);
  });
});
