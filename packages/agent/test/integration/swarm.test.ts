import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSwarm } from '../../src/index.js';
import { startHarness, type Harness } from './core-harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h?.close();
});

describe('swarm', () => {
  it('enrolls 500 agents and heartbeats them over UDP and HTTP with zero errors', async () => {
    const { token } = await h.core.createEnrollmentToken({ for: 'agent', uses: 500 });
    const swarm = createSwarm({ coreUrl: h.core.url, enrollToken: token, count: 500, concurrency: 32, udpSockets: 4, httpConnections: 16 });
    try {
      const enrolled = await swarm.enroll();
      expect(enrolled).toMatchObject({ requested: 500, enrolled: 500, errors: 0 });

      const udp = await swarm.heartbeat({ via: 'udp', durationMs: 600, window: 128 });
      expect(udp.errors).toBe(0);
      expect(udp.timeouts).toBe(0);
      expect(udp.sent).toBeGreaterThan(500);
      expect(udp.acked).toBe(udp.sent);
      expect(udp.ackDrops).toEqual({});
      expect(udp.latency.p99).toBeGreaterThan(0);

      const http = await swarm.heartbeat({ via: 'http', durationMs: 600 });
      expect(http.errors).toBe(0);
      expect(http.acked).toBe(http.sent);
      expect(http.acked).toBeGreaterThan(100);

      const stats = (await h.admin.call('GET', '/stats', { bearer: h.core.adminToken })) as { agents: { total: number; online: number } };
      expect(stats.agents.total).toBe(500);
      expect(stats.agents.online).toBe(500);
    } finally {
      await swarm.close();
    }
  });

  it('counts a used-up token as enrollment errors and stops by itself', async () => {
    const { token } = await h.core.createEnrollmentToken({ for: 'agent', uses: 10 });
    const swarm = createSwarm({ coreUrl: h.core.url, enrollToken: token, count: 20, concurrency: 4 });
    try {
      const r = await swarm.enroll();
      expect(r.enrolled).toBe(10);
      expect(r.errors).toBe(10);
      expect(Object.keys(r.errorCodes)).toEqual(['CORE_ENROLL_TOKEN_USED_UP']);
    } finally {
      await swarm.close();
    }
  });
});
