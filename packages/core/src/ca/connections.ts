import type { GatewayConnectionReport } from '@outpost/common';

/** One tunnel as a gateway reports it (`gatewayConnectionSchema` of @outpost/common). */
export type GatewayConnection = GatewayConnectionReport;

export interface GatewayReport {
  gateway: string;
  name: string;
  receivedAt: number;
  stats: Record<string, number>;
  connections: GatewayConnection[];
}

/**
 * The latest connection table of each gateway (in memory: gateways report again every
 * few seconds, so nothing is lost by a restart). Reports older than `ttlMs` drop out.
 */
export class ConnectionTables {
  readonly #reports = new Map<string, GatewayReport>();
  constructor(private readonly ttlMs: number) {}

  put(report: GatewayReport): void {
    this.#reports.set(report.gateway, report);
  }

  /** Fresh reports, and every connection with its gateway. */
  view(now: number, filter: { principal?: string | undefined } = {}): {
    gateways: Array<{ id: string; name: string; reportedAt: string; connections: number; stats: Record<string, number> }>;
    items: Array<GatewayConnection & { gateway: string }>;
  } {
    const gateways = [];
    const items = [];
    for (const [id, r] of this.#reports) {
      if (now - r.receivedAt > this.ttlMs) {
        this.#reports.delete(id);
        continue;
      }
      gateways.push({ id, name: r.name, reportedAt: new Date(r.receivedAt).toISOString(), connections: r.connections.length, stats: r.stats });
      for (const c of r.connections) if (!filter.principal || c.principal === filter.principal) items.push({ ...c, gateway: id });
    }
    return { gateways, items };
  }
}
