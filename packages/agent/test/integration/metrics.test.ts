// The agent's optional metrics listener: off by default (no port), and when enabled,
// `/metrics` counts the heartbeats the core acknowledged.
import { parseMetrics, waitFor } from '@outpost/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './core-harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

describe('agent metrics', () => {
  it('opens no metrics port unless enabled', async () => {
    const a = h.agent();
    await a.start();
    expect(a.metricsPort).toBe(0);
  });

  it('serves /metrics on its own listener when enabled, and heartbeats move the counters', async () => {
    const a = h.agent({ metrics: { enabled: true, host: '127.0.0.1', port: 0 } });
    await a.start();
    expect(a.metricsPort).toBeGreaterThan(0);
    const url = `http://127.0.0.1:${a.metricsPort}`;
    const acked = await waitFor(
      async () => {
        const m = parseMetrics(await (await fetch(`${url}/metrics`)).text());
        return (m.get('outpost_agent_heartbeats_total{outcome="udp-acked"}') ?? 0) >= 2 && m;
      },
      { timeoutMs: 15_000, what: 'two acknowledged heartbeats' },
    );
    expect(acked.get('outpost_agent_route{kind="direct"}')).toBe(1);
    expect(acked.has('nodejs_eventloop_lag_seconds')).toBe(true);
    expect((await fetch(`${url}/other`)).status).toBe(404);
    await a.stop();
    expect(a.metricsPort).toBe(0);
  });
});
