import { createServiceMetrics, type ServiceMetrics } from '@outpost/common/metrics';
import { Counter, Gauge, type Registry } from 'prom-client';
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

export interface Metrics {
  /** The shared service metrics (common's `createServiceMetrics`, service `gateway`). */
  readonly service: ServiceMetrics;
  readonly registry: Registry;
  readonly tlsErrors: Counter<'code'>;
  readonly refusals: Counter<'code'>;
  readonly enrollments: Counter;
  readonly coreStale: Gauge<'core'>;
  readonly coreAge: Gauge<'core'>;
  readonly revoked: Gauge<'core'>;
}

/**
 * The gateway's Prometheus metrics, on common's `createServiceMetrics` (its own registry,
 * so several gateways in one process — tests — do not collide; process metrics and
 * event-loop lag unprefixed as on every service). Per-connection figures are read from
 * `hot` at scrape time; rare events (refusals, TLS errors, enrollments) are counted
 * directly; limiter counters are exported before anything is refused, so operators see
 * pressure building.
 */
export function createMetrics(withDefaults: boolean, hot: HotCounters): Metrics {
  const m = createServiceMetrics({ service: 'gateway', process: withDefaults });
  const registers = [m.registry];
  const name = (n: string): string => `${m.prefix}${n}`;
  m.gaugeFrom('connections', 'Open client connections (routed or not)', () => hot.connections);
  m.gaugeFrom('tunnels', 'Open tunnels', () => hot.tunnels);
  m.counterFrom('tunnels_total', 'Tunnels opened', () => hot.tunnelsTotal);
  m.counterFrom('handshakes_total', 'Completed TLS handshakes', () => ({ false: hot.handshakes - hot.resumed, true: hot.resumed }), 'resumed');
  m.counterFrom('admission_total', 'Handshake admission decisions', () => ({ admit: hot.admit, hint: hot.hint, drop: hot.drop, 'over-capacity': hot.overCapacity }), 'decision');
  m.counterFrom('bytes_total', 'Relayed bytes (of closed tunnels)', () => ({ in: hot.bytesIn, out: hot.bytesOut }), 'direction');
  m.counterFrom('tunnel_closes_total', 'Tunnel ends by reason', () => Object.fromEntries(hot.closes), 'reason');
  return {
    service: m,
    registry: m.registry,
    tlsErrors: new Counter({ name: name('tls_errors_total'), help: 'Failed TLS handshakes (garbage, timeouts, protocol errors)', labelNames: ['code'], registers }),
    refusals: new Counter({ name: name('refusals_total'), help: 'Refused requests by error code', labelNames: ['code'], registers }),
    enrollments: new Counter({ name: name('enrollments_forwarded_total'), help: 'Enrollment requests forwarded for certificate-less clients', registers }),
    coreStale: new Gauge({ name: name('core_stale'), help: '1 when routes/revocations of a core are older than staleAfter', labelNames: ['core'], registers }),
    coreAge: new Gauge({ name: name('core_sync_age_seconds'), help: 'Age of the last good routes/revocations of a core', labelNames: ['core'], registers }),
    revoked: new Gauge({ name: name('revoked_serials'), help: 'Revoked serials known per core', labelNames: ['core'], registers }),
  };
}
