import { stat } from 'node:fs/promises';
import { createSocket } from 'node:dgram';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '@outpost/testing';
import { AgentErrors, createCoreClient, createIdentityStore } from '../../src/index.js';
import { startHarness, type Harness } from './core-harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h?.close();
});

/** A UDP port nobody listens on: bind one, note it, close it. */
async function closedUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('agent against a real core', () => {
  it('enrolls once, keeps its identity (mode 0600) and reuses it after a restart', async () => {
    const first = h.agent();
    await first.start();
    const id = first.id;
    expect(id).toMatch(/^ag_/);
    expect(first.stats.enrollments).toBe(1);
    const mode = (await stat(first.identityFile)).mode & 0o777;
    expect(mode).toBe(0o600);
    await first.stop();

    const second = h.agent();
    await second.start();
    expect(second.id).toBe(id);
    expect(second.stats.enrollments).toBe(0);
    await waitFor(() => second.stats.lastContact !== undefined, { what: 'first contact after restart' });
    const list = await h.admin.call<{ items: Array<{ id: string }> }>('GET', '/agents', { bearer: h.core.adminToken });
    expect(list.items.map((a) => a.id)).toEqual([id]);
  });

  it('heartbeats over UDP, gets acks, and the core shows it online via udp', async () => {
    const agent = h.agent();
    await agent.start();
    await waitFor(() => agent.config !== undefined && agent.stats.udpAcked >= 2, { what: 'config and two UDP acks' });
    expect(agent.stats.transport).toBe('udp');
    expect(agent.stats.lastContactVia).toBe('udp');
    expect(agent.stats.httpHeartbeats).toBe(0);
    const view = await waitFor(async () => {
      const v = await h.agentView(agent.id!);
      return v.lastContactVia === 'udp' && v;
    }, { what: 'core to see a UDP contact' });
    expect(view.state).toBe('online');
  });

  it('falls back to HTTP heartbeats when UDP gets no ack, and the core shows it poll-only', async () => {
    const agent = h.agent({ datagramPort: await closedUdpPort() });
    await agent.start();
    await waitFor(() => agent.stats.httpHeartbeats >= 1, { what: 'an HTTP heartbeat' });
    expect(agent.stats.transport).toBe('http');
    expect(agent.stats.udpMissed).toBeGreaterThanOrEqual(2);
    expect(agent.stats.udpAcked).toBe(0);
    expect(agent.stats.lastContactVia).toBe('http');
    const view = await h.agentView(agent.id!);
    expect(view.state).toBe('poll-only');
    expect(view.lastContactVia).toBe('http');
  });

  it('forced HTTP heartbeats never touch UDP', async () => {
    const agent = h.agent({ heartbeat: { via: 'http', interval: '200ms' } });
    await agent.start();
    await waitFor(() => agent.stats.httpHeartbeats >= 2, { what: 'two HTTP heartbeats' });
    expect(agent.stats.udpSent).toBe(0);
  });

  it('refetches its config when a heartbeat answer shows a new config serial', async () => {
    const agent = h.agent();
    await agent.start();
    const first = await waitFor(() => agent.config, { what: 'first config' });
    const fetches = agent.stats.configFetches;
    // The agent's name is part of its config: renaming it changes the serial.
    const self = createCoreClient({ coreUrl: h.core.url });
    try {
      const { credential } = JSON.parse(await (await import('node:fs/promises')).readFile(agent.identityFile, 'utf8')) as { credential: string };
      await self.call('PATCH', `/agents/${agent.id}`, { bearer: credential, body: { name: 'renamed' } });
    } finally {
      self.close();
    }
    const next = await waitFor(() => agent.config?.name === 'renamed' && agent.config, { what: 'refetched config' });
    expect(next.serial).not.toBe(first.serial);
    expect(agent.stats.configFetches).toBeGreaterThan(fetches);
    // Config polling is 1h here: only the heartbeat's serial can have triggered it.
    expect(agent.stats.lastContactVia === 'udp' || agent.stats.udpAcked > 0).toBe(true);
  });

  it('refreshConfig() fetches on demand', async () => {
    const agent = h.agent();
    await agent.start();
    await waitFor(() => agent.config, { what: 'first config' });
    const before = agent.stats.configFetches;
    const cfg = await agent.refreshConfig();
    expect(cfg.id).toBe(agent.id);
    expect(agent.stats.configFetches).toBe(before + 1);
  });

  it('survives the core going down and recovers when it is back', async () => {
    const agent = h.agent();
    await agent.start();
    await waitFor(() => agent.stats.udpAcked >= 1, { what: 'first UDP ack' });
    await h.core.stop();
    await waitFor(() => agent.stats.consecutiveFailures >= 2, { what: 'failed heartbeats while the core is down' });
    const failures = agent.stats.heartbeatFailures;
    await h.restartCore();
    const downAt = Date.now();
    await waitFor(() => agent.stats.consecutiveFailures === 0 && Date.parse(agent.stats.lastContact ?? '') >= downAt - 50, {
      what: 'a contact after the core restarted',
    });
    expect(failures).toBeGreaterThanOrEqual(2);
    expect(agent.stats.state).toBe('running');
  });

  it('re-enrolls with its token when the core no longer knows its credential', async () => {
    const agent = h.agent();
    await agent.start();
    const oldId = agent.id!;
    await waitFor(() => agent.stats.udpAcked >= 1, { what: 'first UDP ack' });
    await h.admin.call('DELETE', `/agents/${oldId}`, { bearer: h.core.adminToken });
    await waitFor(() => agent.id !== undefined && agent.id !== oldId && agent.stats.lastContact !== undefined && agent.stats.enrollments === 2, {
      what: 'a new identity',
    });
    expect((await createIdentityStore(`${h.dir}/agents/a1`).load())?.id).toBe(agent.id);
  });

  it('without a token, a rejected identity is reported and kept, never crashing', async () => {
    const enrolled = h.agent();
    await enrolled.start();
    const id = enrolled.id!;
    await enrolled.stop();
    await h.admin.call('DELETE', `/agents/${id}`, { bearer: h.core.adminToken });
    const agent = h.agent({ enrollToken: undefined });
    await agent.start();
    await waitFor(() => agent.stats.state === 'rejected', { what: 'rejected state' });
    expect(agent.id).toBe(id);
  });

  it('refuses to start with no identity and no token to enroll with', async () => {
    const agent = h.agent({ enrollToken: undefined }, 'fresh');
    await expect(agent.start()).rejects.toMatchObject({ code: AgentErrors.NO_ENROLL_TOKEN });
  });

  it('refuses to start when the core rejects the enrollment token', async () => {
    const agent = h.agent({ enrollToken: 'not-a-real-token' }, 'bad');
    await expect(agent.start()).rejects.toMatchObject({ code: AgentErrors.ENROLL_REJECTED });
  });

  it('stop() and start() are idempotent', async () => {
    const agent = h.agent();
    await Promise.all([agent.start(), agent.start()]);
    await waitFor(() => agent.stats.lastContact !== undefined, { what: 'contact' });
    await Promise.all([agent.stop(), agent.stop()]);
    expect(agent.stats.state).toBe('stopped');
    await agent.start();
    expect(agent.stats.enrollments).toBe(1);
    await agent.stop();
  });
});
