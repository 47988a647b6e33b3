import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The gateway's Prometheus metrics (prom-client, its own registry so several gateways
 * in one process — tests — do not collide). Limiter counters are exported before
 * anything is refused, so operators see pressure building.
 */
export function createMetrics(withDefaults: boolean) {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'outpost_gateway_' });
  const m = {
    registry,
    connections: new Gauge({ name: 'outpost_gateway_connections', help: 'Open client connections (routed or not)', registers: [registry] }),
    tunnels: new Gauge({ name: 'outpost_gateway_tunnels', help: 'Open tunnels', registers: [registry] }),
    tunnelsTotal: new Counter({ name: 'outpost_gateway_tunnels_total', help: 'Tunnels opened', registers: [registry] }),
    handshakes: new Counter({ name: 'outpost_gateway_handshakes_total', help: 'Completed TLS handshakes', labelNames: ['resumed'], registers: [registry] }),
    tlsErrors: new Counter({ name: 'outpost_gateway_tls_errors_total', help: 'Failed TLS handshakes (garbage, timeouts, protocol errors)', labelNames: ['code'], registers: [registry] }),
    refusals: new Counter({ name: 'outpost_gateway_refusals_total', help: 'Refused requests by error code', labelNames: ['code'], registers: [registry] }),
    admission: new Counter({ name: 'outpost_gateway_admission_total', help: 'Handshake admission decisions', labelNames: ['decision'], registers: [registry] }),
    bytes: new Counter({ name: 'outpost_gateway_bytes_total', help: 'Relayed bytes', labelNames: ['direction'], registers: [registry] }),
    closes: new Counter({ name: 'outpost_gateway_tunnel_closes_total', help: 'Tunnel ends by reason', labelNames: ['reason'], registers: [registry] }),
    enrollments: new Counter({ name: 'outpost_gateway_enrollments_forwarded_total', help: 'Enrollment requests forwarded for certificate-less clients', registers: [registry] }),
    coreStale: new Gauge({ name: 'outpost_gateway_core_stale', help: '1 when routes/revocations of a core are older than staleAfter', labelNames: ['core'], registers: [registry] }),
    coreAge: new Gauge({ name: 'outpost_gateway_core_sync_age_seconds', help: 'Age of the last good routes/revocations of a core', labelNames: ['core'], registers: [registry] }),
    revoked: new Gauge({ name: 'outpost_gateway_revoked_serials', help: 'Revoked serials known per core', labelNames: ['core'], registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
