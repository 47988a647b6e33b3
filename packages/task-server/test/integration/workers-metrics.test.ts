// /metrics of a task server running with worker processes: whichever worker is scraped,
// the answer merges the primary's counters and every worker's (requests each counted once).
import { get } from 'node:http';
import { metricTotal, parseMetrics } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createTaskServer } from '@outpost/task-server';
import { startEnv, type Env } from '../harness.js';

let env: Env | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

/** GET on a fresh connection (no keep-alive), so node:cluster hands requests to every worker. */
function fresh(url: string): Promise<{ status: number; body: string; worker: unknown }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        let worker: unknown;
        try {
          worker = (JSON.parse(body) as { worker?: unknown }).worker;
        } catch {
          worker = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body, worker });
      });
    }).on('error', reject);
  });
}

describe('task server metrics with workers', () => {
  it('merges the primary and every worker: requests served by either worker are all counted, whichever is scraped', async () => {
    env = await startEnv({ workers: 2 }, createTaskServer);
    const seen = new Set<unknown>();
    const N = 12;
    for (let i = 0; i < N; i++) {
      const r = await fresh(`${env.ts.url}/api/v1/health`);
      expect(r.status).toBe(200);
      seen.add(r.worker);
    }
    // Both workers served some (node:cluster round-robin), so one worker's count alone is short of N.
    expect(seen.size).toBe(2);
    for (let i = 0; i < 2; i++) {
      const res = await fresh(`${env.ts.url}/metrics`);
      expect(res.status).toBe(200);
      const m = parseMetrics(res.body);
      expect(metricTotal(m, 'outpost_task_server_http_requests_total', 'route="/api/v1/health"')).toBe(N);
      // The primary's own figures are there too.
      expect(m.get('outpost_task_server_level_db_bytes')).toBeGreaterThan(0);
      expect(m.has('outpost_task_server_agents')).toBe(true);
      expect(m.has('nodejs_eventloop_lag_seconds')).toBe(true);
      expect(m.has('process_resident_memory_bytes')).toBe(true);
    }
  });
});
