import { z } from 'zod';

/** Largest connection report a gateway may send (`POST /gateway/connections`), bytes. */
export const GATEWAY_REPORT_MAX_BYTES = 16 * 1024 * 1024;
/** Most connections one report may list. */
export const GATEWAY_REPORT_MAX_CONNECTIONS = 100_000;

/** One tunnel as a gateway reports it. */
export const gatewayConnectionSchema = z
  .object({
    principal: z.string().max(128),
    kind: z.string().max(32),
    serial: z.string().max(128),
    remote: z.string().max(128),
    target: z.string().max(300),
    since: z.string().max(64),
    bytesIn: z.number().min(0),
    bytesOut: z.number().min(0),
  })
  .strict();

/**
 * A gateway's connection table, as it sends it to each core it serves and as the core
 * checks it: at most {@link GATEWAY_REPORT_MAX_CONNECTIONS} connections, and the body
 * at most {@link GATEWAY_REPORT_MAX_BYTES}.
 */
export const gatewayReportSchema = z
  .object({
    name: z.string().max(255),
    stats: z.record(z.string().max(64), z.number()).refine((s) => Object.keys(s).length <= 256, 'at most 256 stats').default({}),
    connections: z.array(gatewayConnectionSchema).max(GATEWAY_REPORT_MAX_CONNECTIONS),
  })
  .strict();

export type GatewayConnectionReport = z.output<typeof gatewayConnectionSchema>;
export type GatewayReportBody = z.input<typeof gatewayReportSchema>;
