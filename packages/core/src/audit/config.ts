import { duration, portSchema, z } from '@outpost/common';

/** Syslog facilities by name (RFC 5424 section 6.2.1). */
export const SYSLOG_FACILITIES = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;
export type SyslogFacility = keyof typeof SYSLOG_FACILITIES;

/** A syslog receiver (a SIEM's collector): RFC 5424 over UDP, or TCP with RFC 6587 octet counting. */
export const syslogExportSchema = z
  .object({
    host: z.string().min(1).max(253),
    port: portSchema.refine((p) => p > 0, 'a port above 0').default(514),
    protocol: z.enum(['udp', 'tcp']).default('udp'),
    /** @default 'local0' */
    facility: z.enum(Object.keys(SYSLOG_FACILITIES) as [SyslogFacility, ...SyslogFacility[]]).default('local0'),
    /** The APP-NAME field. @default 'outpost' */
    appName: z.string().regex(/^[!-~]{1,48}$/, 'printable ASCII without spaces, up to 48').default('outpost'),
  })
  .strict();

/** The `core.audit:` section. */
export const auditConfigSchema = z
  .object({
    retention: z
      .object({
        /** Entries older than this are pruned. @default '365d' */
        maxAge: duration('365d'),
        /** At most this many entries are kept (the oldest go first). @default 1000000 */
        maxEntries: z.number().int().min(1).default(1_000_000),
        /** How often retention runs (it also runs at start). @default '1h' */
        interval: duration('1h'),
      })
      .strict()
      .prefault({}),
    /**
     * Identical refusals (same caller, address, route, status, code) within this window are
     * written once, then counted in one `audit.repeated` entry when it ends; 0 writes each.
     * @default '60s'
     */
    coalesceRefusals: duration('60s'),
    /** Each of `request`, `before`, `after` is cut to this many bytes of JSON (a marker says so). @default 16384 */
    maxFieldBytes: z.number().int().min(256).max(1024 * 1024).default(16 * 1024),
    stream: z
      .object({
        /** Live streams (`GET /api/v1/audit/stream`) open at once. @default 16 */
        maxClients: z.number().int().min(1).max(1000).default(16),
        /** A comment line this often keeps idle streams open through proxies. @default '25s' */
        keepAlive: duration('25s'),
      })
      .strict()
      .prefault({}),
    export: z
      .object({
        /** Every entry as one JSON line appended to this file (created mode 0600). */
        file: z.string().min(1).optional(),
        syslog: syslogExportSchema.optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

export type AuditConfig = z.output<typeof auditConfigSchema>;
export type SyslogExportConfig = z.output<typeof syslogExportSchema>;
