import { hostname } from 'node:os';
import { coreUrls, duration, portSchema, z } from '@outpost/common';

const port = portSchema;

/** The `taskServer:` section. Strict: unknown keys are errors. */
export const taskServerConfigSchema = z
  .object({
    /** The core's base URL (no `/api/v1`), or a list of them (several cores of one estate, failed over in order); parsed to a list. */
    coreUrl: coreUrls,
    /** Level database (identity, agents' keys, work, status outbox). @default './var/task-server' */
    dataDir: z.string().min(1).default('./var/task-server'),
    /** The name it enrolls with. @default os.hostname() */
    name: z.string().min(1).max(128).default(() => hostname()),
    /** Site-server enrollment token (used when the data dir holds no identity). */
    enrollToken: z.string().min(1).optional(),
    enrollTokenFile: z.string().min(1).optional(),
    /** `address/prefix` reported to the core (site selection by subnet). */
    address: z.string().optional(),
    /**
     * HTTP/WebSocket worker processes (node:cluster, one shared listener). 0: serve in
     * this process. Each worker holds about 1/N of the agents' WebSockets, so N workers
     * hold N times the sockets one process may open; the level database, the core link,
     * the outbox and tickles stay in this process. @default 0
     */
    workers: z.number().int().min(0).max(64).default(0),
    http: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: port.default(8091),
        /** The URL agents are told to use. @default derived from host and port */
        publicUrl: z.url().optional(),
      })
      .strict()
      .prefault({}),
    /** Where the core's tickles arrive (UDP). */
    coreTickle: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: port.default(50123),
        /** `host:port` the core sends to. @default the bound address (127.0.0.1 for any-address) */
        advertise: z.string().optional(),
      })
      .strict()
      .prefault({}),
    agents: z
      .object({
        /** UDP port agents listen on for tickles (when an agent says none). @default 50124 */
        tickleDefaultPort: port.default(50124),
        /** Tickles sent per second (p-queue, rate-limited). @default 5000 */
        tickleRate: z.number().int().min(1).max(1_000_000).default(5_000),
        /** Re-tickle an agent that has not fetched after this long... @default '5s' */
        retickleAfter: duration('5s'),
        /** ...this many times. @default 2 */
        retickles: z.number().int().min(0).max(10).default(2),
        /** Fraction of UDP tickles dropped on purpose (fault injection for tests). @default 0 */
        tickleDropRate: z.number().min(0).max(1).default(0),
        /** Interval agents poll at; each gets its own slot in it. @default '30m' */
        pollInterval: duration('30m'),
        /** WebSocket ping interval; a socket silent for two is closed. @default '120s' */
        wsPingInterval: duration('120s'),
      })
      .strict()
      .prefault({}),
    core: z
      .object({
        /** Fetch pending work even without a tickle this often (fallback). @default '5m' */
        pollInterval: duration('5m'),
        /** Per-request timeout. @default '30s' */
        timeout: duration('30s'),
        /** Agents per page of pending work. @default 5000 */
        pageSize: z.number().int().min(1).max(50_000).default(5_000),
      })
      .strict()
      .prefault({}),
    forward: z
      .object({
        /** Events per batch to the core. @default 5000 */
        batchSize: z.number().int().min(1).max(20_000).default(5_000),
        /** Largest batch body, bytes. @default 8 MiB */
        maxBytes: z.number().int().min(65_536).default(8 * 1024 * 1024),
        /** First retry after a failed batch, and the cap. @default '500ms' / '15s' */
        retryBase: duration('500ms'),
        retryCap: duration('15s'),
        /**
         * How long a batch smaller than `batchSize` waits for more events (from when its
         * oldest was written): fewer, fuller calls to the core. @default '200ms'
         */
        linger: duration('200ms'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .refine((c) => !(c.enrollToken && c.enrollTokenFile), { message: 'set enrollToken or enrollTokenFile, not both', path: ['enrollTokenFile'] });

export type TaskServerConfigInput = z.input<typeof taskServerConfigSchema>;
export type TaskServerConfig = z.output<typeof taskServerConfigSchema>;
