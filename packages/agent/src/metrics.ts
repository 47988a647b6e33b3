import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServiceMetrics, type ServiceMetrics } from '@outpost/common';
import type { AgentStats } from './agent.js';
import type { TaskAgent } from './tasks/task-agent.js';

export interface AgentMetricSources {
  stats: () => Readonly<AgentStats>;
  tasks: () => TaskAgent | undefined;
}

/**
 * The agent's Prometheus metrics, read at scrape time from the counters it keeps:
 * heartbeats by transport and outcome, config fetches, tickles received and dropped
 * by reason, work fetches, runs, status events reported, WebSocket connects, the route
 * to the core, failovers between core URLs, certificate renewals; process metrics and event-loop lag.
 */
export function createAgentMetrics(src: AgentMetricSources): ServiceMetrics {
  const m = createServiceMetrics({ service: 'agent' });
  m.counterFrom('heartbeats_total', 'Heartbeats, by how they went (udp-acked, udp-missed, http, failed)', () => {
    const s = src.stats();
    return { 'udp-acked': s.udpAcked, 'udp-missed': s.udpMissed, http: s.httpHeartbeats, failed: s.heartbeatFailures };
  }, 'outcome');
  m.counterFrom('heartbeat_acks_dropped_total', 'UDP heartbeat acks dropped, by reason', () => src.stats().ackDrops as Record<string, number>, 'reason');
  m.gaugeFrom('heartbeat_udp_rtt_seconds', 'Round trip of the last acknowledged UDP heartbeat', () => {
    const ms = src.stats().lastUdpRttMs;
    return ms === undefined ? undefined : ms / 1000;
  });
  m.counterFrom('config_fetches_total', 'Config fetches from the core, by outcome', () => {
    const s = src.stats();
    return { ok: s.configFetches, failed: s.configFailures };
  }, 'outcome');
  m.gaugeFrom('route', 'How the core is reached now (1 for the current route)', () => ({ [src.stats().route]: 1 }), 'kind');
  m.counterFrom('enrollments_total', 'Enrollments since start', () => src.stats().enrollments);
  m.counterFrom('core_failovers_total', 'Times calls moved to another of the core URLs (a core failed or answered 502/503/504)', () => src.stats().coreFailovers);
  m.counterFrom('certificate_renewals_total', 'Certificates renewed (or first obtained) since start', () => src.stats().renewals);
  const tasks = () => src.tasks()?.stats;
  m.counterFrom('tickles_received_total', 'Tickles from the task server received', () => tasks()?.tickles.received);
  m.counterFrom('tickles_accepted_total', 'Tickles from the task server accepted', () => tasks()?.tickles.accepted);
  m.counterFrom('tickles_dropped_total', 'Tickles dropped, by reason', () => tasks()?.tickles.dropped as Record<string, number> | undefined, 'reason');
  m.counterFrom('work_fetches_total', 'Work fetches from the task server, by outcome', () => {
    const t = tasks();
    return t ? { ok: t.fetches, failed: t.fetchFailures } : undefined;
  }, 'outcome');
  m.counterFrom('runs_total', 'Runs, by phase (started, finished)', () => {
    const t = tasks();
    return t ? { started: t.runsStarted, finished: t.runsFinished } : undefined;
  }, 'phase');
  m.counterFrom('work_refused_total', 'Runs refused before anything ran (unsigned, bad-signature, bad-ticket, expired, replayed), by reason', () => tasks()?.refused as Record<string, number> | undefined, 'reason');
  m.counterFrom('status_events_reported_total', 'Status events the task server acknowledged', () => tasks()?.reporter.sent);
  m.counterFrom('status_report_failures_total', 'Failed status reports (retried)', () => tasks()?.reporter.failures);
  m.counterFrom('websocket_connects_total', 'WebSocket connections to the task server opened', () => tasks()?.ws.connects);
  m.gaugeFrom('websocket_connected', '1 while the WebSocket to the task server is open', () => {
    const t = tasks();
    return t ? (t.ws.connected ? 1 : 0) : undefined;
  });
  return m;
}

/**
 * A plain HTTP listener for `GET /metrics` (and nothing else), for the agent's optional
 * `metrics` config: the agent has no HTTP server of its own.
 */
export class MetricsListener {
  #server: Server | undefined;

  constructor(private readonly metrics: ServiceMetrics) {}

  get port(): number {
    return this.#server ? (this.#server.address() as AddressInfo).port : 0;
  }

  async start(host: string, port: number): Promise<void> {
    const m = this.metrics;
    const server = createServer((req, res) => {
      const started = performance.now();
      const path = (req.url ?? '/').split('?')[0];
      const route = path === '/metrics' ? '/metrics' : 'unmatched';
      res.once('finish', () => m.observeRequest(req.method ?? 'GET', route, res.statusCode, (performance.now() - started) / 1000));
      if (route !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"COMMON_NOT_FOUND","message":"only GET /metrics here"}}');
        return;
      }
      m.text().then(
        (text) => {
          res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        () => {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
          res.end('metrics failed\n');
        },
      );
    });
    server.requestTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
  }

  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
