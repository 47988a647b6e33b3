import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { CloseReason } from './tunnel.js';

/**
 * Plain counters the connection path bumps (a property increment, no label lookups);
 * the Prometheus metrics read them when scraped.
 */
export class HotCounters {
  connections = 0;
  tunnels = 0;
  tunnelsTotal = 0;
  handshakes = 0;
  resumed = 0;
  admit = 0;
  hint = 0;
  drop = 0;
  overCapacity = 0;
  bytesIn = 0;
  bytesOut = 0;
  readonly closes = new Map<CloseReason, number>();
}

/**
 * The gateway's Prometheus metrics (prom-client, its own registry so several gateways
 * in one process — tests — do not collide). Limiter counters are exported before
 * anything is refused, so operators see pressure building. Per-connection figures come
 * from `hot` at scrape time; rare events (refusals, TLS errors) are counted directly.
 */
export function createMetrics(withDefaults: boolean, hot: HotCounters) {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'outpost_gateway_' });
  const m = {
    registry,
    connections: new Gauge({
      name: 'outpost_gateway_connections',
      help: 'Open client connections (routed or not)',
      registers: [registry],
      collect() {
        this.set(hot.connections);
      },
    }),
    tunnels: new Gauge({
      name: 'outpost_gateway_tunnels',
      help: 'Open tunnels',
      registers: [registry],
      collect() {
        this.set(hot.tunnels);
      },
    }),
    tunnelsTotal: new Counter({
      name: 'outpost_gateway_tunnels_total',
      help: 'Tunnels opened',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(hot.tunnelsTotal);
      },
    }),
    handshakes: new Counter({
      name: 'outpost_gateway_handshakes_total',
      help: 'Completed TLS handshakes',
      labelNames: ['resumed'],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ resumed: 'false' }, hot.handshakes - hot.resumed);
        this.inc({ resumed: 'true' }, hot.resumed);
      },
    }),
    tlsErrors: new Counter({ name: 'outpost_gateway_tls_errors_total', help: 'Failed TLS handshakes (garbage, timeouts, protocol errors)', labelNames: ['code'], registers: [registry] }),
    refusals: new Counter({ name: 'outpost_gateway_refusals_total', help: 'Refused requests by error code', labelNames: ['code'], registers: [registry] }),
    admission: new Counter({
      name: 'outpost_gateway_admission_total',
      help: 'Handshake admission decisions',
      labelNames: ['decision'],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ decision: 'admit' }, hot.admit);
        this.inc({ decision: 'hint' }, hot.hint);
        this.inc({ decision: 'drop' }, hot.drop);
        this.inc({ decision: 'over-capacity' }, hot.overCapacity);
      },
    }),
    bytes: new Counter({
      name: 'outpost_gateway_bytes_total',
      help: 'Relayed bytes (of closed tunnels)',
      labelNames: ['direction'],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ direction: 'in' }, hot.bytesIn);
        this.inc({ direction: 'out' }, hot.bytesOut);
      },
    }),
    closes: new Counter({
      name: 'outpost_gateway_tunnel_closes_total',
      help: 'Tunnel ends by reason',
      labelNames: ['reason'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [reason, n] of hot.closes) this.inc({ reason }, n);
      },
    }),
    enrollments: new Counter({ name: 'outpost_gateway_enrollments_forwarded_total', help: 'Enrollment requests forwarded for certificate-less clients', registers: [registry] }),
    coreStale: new Gauge({ name: 'outpost_gateway_core_stale', help: '1 when routes/revocations of a core are older than staleAfter', labelNames: ['core'], registers: [registry] }),
    coreAge: new Gauge({ name: 'outpost_gateway_core_sync_age_seconds', help: 'Age of the last good routes/revocations of a core', labelNames: ['core'], registers: [registry] }),
    revoked: new Gauge({ name: 'outpost_gateway_revoked_serials', help: 'Revoked serials known per core', labelNames: ['core'], registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
