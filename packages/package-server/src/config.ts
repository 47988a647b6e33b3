import { coreUrls, duration, portSchema, z } from '@outpost/common';

const port = portSchema;

/** The `packageServer:` section of a config file. Strict: unknown keys are errors. */
export const packageServerConfigSchema = z
  .object({
    /** Its name in the core's registry. */
    name: z.string().min(1).max(128),
    /** The core's base URL (no `/api/v1`), or a list of them (several cores of one estate, failed over in order); parsed to a list. */
    coreUrl: coreUrls,
    /** Level database, identity, content. @default './var/package-server' */
    dataDir: z.string().min(1).default('./var/package-server'),
    /** Fetch only from codebases in its own sites (a branch's second-hop server). @default false */
    constrained: z.boolean().default(false),
    /** One-time site-server enrollment token (first start only). */
    enrollToken: z.string().min(1).optional(),
    /** A file holding the token (first line). */
    enrollTokenFile: z.string().min(1).optional(),
    /** `address/prefix` reported to the core: puts the server in the sites whose subnets hold it. */
    address: z.string().min(1).optional(),
    http: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: port.default(8081),
        /** The URL agents and other package servers use. @default derived from host and port */
        publicUrl: z.url().optional(),
        /** Largest read per chunk when serving (many downloads at once read less each, down to 64 KiB). @default 1048576 */
        chunkSize: z.number().int().min(65536).max(16 * 1024 * 1024).default(1024 * 1024),
        /** Memory for the read buffers of all downloads together. @default 32 MiB */
        readBuffers: z.number().int().min(1024 * 1024).default(32 * 1024 * 1024),
        /** Memory for whole small files (up to 256 KiB each), served without touching the disk. @default 32 MiB */
        smallFileCache: z.number().int().min(0).default(32 * 1024 * 1024),
        /**
         * A download whose socket takes no bytes for this long (a client that stopped
         * reading) is cut off and counted; a client must take one read chunk per period. @default '60s'
         */
        idleTimeout: duration('60s'),
        /** Clients counted apart in `bytesTo` (by `x-outpost-site-server`); the rest fold into `other`. @default 64 */
        maxCountedClients: z.number().int().min(1).max(10_000).default(64),
      })
      .strict()
      .prefault({}),
    tickle: z
      .object({
        /** Listen for the core's UDP tickles here; `enabled: false` relies on polling. */
        enabled: z.boolean().default(true),
        host: z.string().default('127.0.0.1'),
        port: port.default(0),
        /** Address told to the core. @default host:bound port */
        advertise: z.string().optional(),
      })
      .strict()
      .prefault({}),
    /** Assignment poll interval when not tickled; 0: what the core says (5m). @default 0 */
    pollInterval: duration('0'),
    /** Packages staged at once. @default 2 */
    concurrency: z.number().int().min(1).max(64).default(2),
    retry: z
      .object({
        /** First retry after a failed staging: base·2^N. @default '3m' */
        base: duration('3m'),
        /** @default '24h' */
        cap: duration('24h'),
        /** ± relative jitter. @default 0.2 */
        jitter: z.number().min(0).max(1).default(0.2),
      })
      .strict()
      .prefault({}),
    bandwidth: z
      .object({
        /** Bytes/s for staging downloads; 0: unlimited. @default 0 */
        staging: z.number().int().min(0).default(0),
        /** Bytes/s for serving, all clients together; 0: unlimited. @default 0 */
        serving: z.number().int().min(0).default(0),
      })
      .strict()
      .prefault({}),
    /** Bytes of free disk kept in reserve when checking space before staging. @default 64 MiB */
    reserveBytes: z.number().int().min(0).default(64 * 1024 * 1024),
    /** Per-request timeout to the core and sources (no bytes for this long fails). @default '30s' */
    timeout: duration('30s'),
    /** Watch the store and re-verify files that change or vanish. @default true */
    watchStore: z.boolean().default(true),
  })
  .strict();

export type PackageServerConfigInput = z.input<typeof packageServerConfigSchema>;
export type PackageServerConfig = z.output<typeof packageServerConfigSchema>;
