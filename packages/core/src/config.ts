import { hierarchyConfigSchema } from './hierarchy/config.js';
import { duration, portSchema, z } from '@outpost/common';
import { caConfigSchema } from './ca/config.js';
import { packagesConfigSchema } from './packages/config.js';
import { tasksConfigSchema } from './tasks/config.js';
import { bootConfigSchema } from './boot/config.js';
import { consoleConfigSchema } from './console/config.js';
import { adminsConfigSchema } from './admins/config.js';
import { auditConfigSchema } from './audit/config.js';
import { installConfigSchema } from './install/config.js';

const port = portSchema;

/**
 * Where the core keeps its records: `level` (embedded, in `dataDir`: nothing to install)
 * or `postgres` (a PostgreSQL server; `url` is a libpq connection string, several hosts
 * with `target_session_attrs=read-write` follow a promoted standby).
 */
/** Both backends: the change journal's entries older than this are pruned (a reader further behind resyncs). @default '24h' */
const journalRetention = duration('24h');

export const storeConfigSchema = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('level'), journalRetention }).strict(),
    z
      .object({
        kind: z.literal('postgres'),
        journalRetention,
        url: z.string().min(1).max(4096),
        /** The table of the core's records. @default 'outpost_core' */
        table: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).default('outpost_core'),
        /** Connections at most. @default 10 */
        poolSize: z.number().int().min(1).max(200).default(10),
      })
      .strict(),
  ])
  .prefault({ kind: 'level' });

/** The `core:` section of a config file. Strict: unknown keys are errors. */
export const coreConfigSchema = z
  .object({
    /** Level database (with `store.kind: level`), admin token, keys, package content. @default './var/core' */
    dataDir: z.string().min(1).default('./var/core'),
    /** Where records live: level in `dataDir` (default) or PostgreSQL. */
    store: storeConfigSchema,
    http: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: port.default(8080),
        /** The URL agents and site servers are told to use. @default derived from host and port */
        publicUrl: z.url().optional(),
        bodyLimit: z.number().int().positive().default(1024 * 1024),
        logRequests: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    datagram: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: port.default(50123),
        /** Largest clock difference accepted in a datagram. */
        window: duration('2m'),
      })
      .strict()
      .prefault({}),
    agents: z
      .object({
        heartbeatInterval: duration('5m'),
        offlineAfterMissed: z.number().int().min(1).default(3),
        configPollInterval: duration('30m'),
      })
      .strict()
      .prefault({}),
    siteServers: z
      .object({
        heartbeatInterval: duration('1m'),
        offlineAfterMissed: z.number().int().min(1).default(3),
      })
      .strict()
      .prefault({}),
    enrollment: z
      .object({
        defaultExpiry: duration('24h'),
      })
      .strict()
      .prefault({}),
    /** Packages: content store, drop folder, staging. */
    packages: packagesConfigSchema,
    /** Certificate authority and HTTPS (see `ca/README.md`). */
    ca: caConfigSchema,
    /** How often last-contact times are written to the database. */
    contactFlushInterval: duration('5s'),
    /** Jobs, tasks and runs (see src/tasks/README.md). */
    tasks: tasksConfigSchema,
    /** Boot decisions: default menu, timelines (see src/boot/README.md). */
    boot: bootConfigSchema,
    /** The web console and its live feed (see src/console/README.md). */
    console: consoleConfigSchema,
    /** Administrators: sessions, sign-in lockout, passwords, API tokens, single sign-on (see src/admins/README.md). */
    admins: adminsConfigSchema,
    /** The audit log: retention, export to a file or syslog (see src/audit/README.md). */
    audit: auditConfigSchema,
    /** Parent and child cores (see src/hierarchy/README.md). */
    hierarchy: hierarchyConfigSchema,
    /** The one-line enrollment link's files (see src/install/README.md). */
    install: installConfigSchema,
    /** Leases for work that runs on one core at a time (store.kind: postgres; see README "Leases"). */
    leases: z
      .object({
        /** A lease its holder has not renewed for this long passes to another core; renewed every third of it. @default '6s' */
        ttl: duration('6s').pipe(z.number().min(300).max(600_000)),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type CoreConfigInput = z.input<typeof coreConfigSchema>;
export type CoreConfig = z.output<typeof coreConfigSchema>;
