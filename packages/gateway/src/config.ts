import { coreUrls, duration, portSchema, z } from '@outpost/common/config-schema';

const port = portSchema;

/** A core the gateway follows over its API (enrolls as a site server on first start). */
const linkedCore = z
  .object({
    /**
     * The core's URL as the gateway reaches it, or a list of them (several active cores of
     * one estate: calls fail over in order); parsed to a list.
     */
    url: coreUrls,
    /** A site-server enrollment token, used when the data dir holds no identity for this core. */
    enrollToken: z.string().min(1).optional(),
    enrollTokenFile: z.string().min(1).optional(),
    /** CA file to trust for an HTTPS core URL before enrollment gave us its CA. */
    caFile: z.string().min(1).optional(),
  })
  .strict();

/** A core given by files only (no API link): its CA, its targets, optionally revoked serials. */
const staticCore = z
  .object({
    /** The core id (else read from the CA certificate's `outpost://<id>/core/ca` SAN URI). */
    id: z.string().min(1).optional(),
    caFile: z.string().min(1),
    routes: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/, 'expected host:port')).max(10_000),
    /** A file of revoked serials (hex, one per line), re-read on reload. */
    revokedFile: z.string().min(1).optional(),
  })
  .strict();

/** The `gateway:` section of a config file. */
export const gatewayConfigSchema = z
  .object({
    /** Name reported to the cores. @default 'gateway' */
    name: z.string().min(1).max(255).default('gateway'),
    /** Identities, certificates and the last good routes/revocations per core. @default './var/gateway' */
    dataDir: z.string().min(1).default('./var/gateway'),
    listen: z
      .object({ host: z.string().default('0.0.0.0'), port: port.default(8443), backlog: z.number().int().min(1).default(4096) })
      .strict()
      .prefault({}),
    /** Health and Prometheus metrics, plain HTTP, no client certificate. */
    metrics: z
      .object({ enabled: z.boolean().default(true), host: z.string().default('127.0.0.1'), port: port.default(9464) })
      .strict()
      .prefault({}),
    /** The URL agents use for this gateway (told to the cores). @default derived from listen */
    publicUrl: z.url().optional(),
    /** The gateway's own certificate; without it, the one the first linked core issued. */
    tls: z
      .object({
        certFile: z.string().min(1).optional(),
        keyFile: z.string().min(1).optional(),
        /** Names (DNS or IP) asked for in the issued server certificate. */
        names: z.array(z.string().min(1).max(253)).max(64).default(['localhost', '127.0.0.1']),
        /** TLS session cache and ticket lifetime, seconds. @default 300 */
        sessionTimeout: z.number().int().min(0).max(86_400).default(300),
        /** 48-byte ticket key file (share it between gateways for resumption after failover). @default made in dataDir */
        ticketKeyFile: z.string().min(1).optional(),
      })
      .strict()
      .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), { message: 'set certFile and keyFile together', path: ['keyFile'] })
      .prefault({}),
    cores: z.array(z.union([linkedCore, staticCore])).min(1).max(64),
    /** How often routes and revocations are fetched from each linked core. @default '10s' */
    refreshInterval: duration('10s'),
    /** Alarm when a core's routes/revocations are older than this. @default '5m' */
    staleAfter: duration('5m'),
    /** How often the connection table is sent to each linked core. @default '15s' */
    reportInterval: duration('15s'),
    /** Per request to a core. @default '5s' */
    coreTimeout: duration('5s'),
    limits: z
      .object({
        /** Open client connections (tunnels and those not yet routed). @default 60000 */
        maxConnections: z.number().int().min(1).default(60_000),
        /** Open tunnels per client certificate. @default 32 */
        maxPerClient: z.number().int().min(1).default(32),
        /** Handshakes admitted per client IP per second (token bucket). @default 20 */
        handshakeRate: z.number().min(0.1).default(20),
        /** Bucket size. @default 40 */
        handshakeBurst: z.number().int().min(1).default(40),
        /** Base of the Retry-After hint, seconds (jittered up to double). @default 5 */
        retryAfter: z.number().int().min(1).max(3600).default(5),
        handshakeTimeout: duration('10s'),
        /** Time for the CONNECT head after the handshake. @default '10s' */
        headTimeout: duration('10s'),
        /** A tunnel with no bytes either way for this long is closed. @default '10m' */
        idleTimeout: duration('10m'),
        /** Time to connect to a target. @default '5s' */
        connectTimeout: duration('5s'),
        /** Largest CONNECT head. @default 8192 */
        maxHeadBytes: z.number().int().min(256).max(65_536).default(8192),
        /** Relay buffer per direction, bytes. @default 65536 */
        relayBuffer: z.number().int().min(1024).max(4 * 1024 * 1024).default(64 * 1024),
        /** Largest enrollment body forwarded for certificate-less clients. @default 65536 */
        maxEnrollBody: z.number().int().min(1024).max(1024 * 1024).default(64 * 1024),
      })
      .strict()
      .prefault({}),
    /** Let clients without a certificate send `POST /api/v1/enroll` to a core. @default true */
    allowEnrollment: z.boolean().default(true),
    /** How often tunnels of expired certificates are swept. @default '30s' */
    sweepInterval: duration('30s'),
    /**
     * Worker processes (node:cluster) sharing the listeners, for more tunnels than one
     * process's open-files limit allows. Honoured by `outpost-gateway`; the appliance
     * runs one. @default 1
     */
    workers: z.number().int().min(1).max(64).default(1),
  })
  .strict();

export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>;
export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
export type LinkedCoreConfig = z.output<typeof linkedCore>;
export type StaticCoreConfig = z.output<typeof staticCore>;

