import { duration, z } from '@outpost/common';

/** The `core.ca:` section: the core's certificate authority and its HTTPS listener. */
export const caConfigSchema = z
  .object({
    /** Lifetime of an issued agent or site-server certificate. @default '90d' */
    certificateLifetime: duration('90d'),
    /** Principals renew when this much lifetime is left. @default '30d' */
    renewBefore: duration('30d'),
    /** Lifetime of the CA certificate made on first start. @default '20y' */
    caLifetime: duration('7300d'),
    /** `auto-approve`: new certificates work at once; `hold`: they wait in the quarantine list for an admin. @default 'auto-approve' */
    quarantine: z.enum(['auto-approve', 'hold']).default('auto-approve'),
    /** How often certificates of deleted agents and site servers are revoked. @default '5s' */
    reconcileInterval: duration('5s'),
    /** The `nextUpdate` of the CRL is this far ahead. @default '1h' */
    crlLifetime: duration('1h'),
    /** Reports older than this drop out of `GET /gateway/connections`. @default '2m' */
    connectionReportTtl: duration('2m'),
    https: z
      .object({
        /** Serve the API over HTTPS. @default false */
        enabled: z.boolean().default(false),
        /** An admin-supplied certificate (PEM, chain allowed); without one the CA issues one. */
        certFile: z.string().min(1).optional(),
        keyFile: z.string().min(1).optional(),
        /** Extra DNS names or IP addresses for the issued server certificate. */
        names: z.array(z.string().min(1).max(253)).max(64).default([]),
      })
      .strict()
      .refine((h) => (h.certFile === undefined) === (h.keyFile === undefined), { message: 'set certFile and keyFile together', path: ['keyFile'] })
      .prefault({}),
  })
  .strict()
  .prefault({});

export type CaConfig = z.output<typeof caConfigSchema>;
