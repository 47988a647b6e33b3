import { durationSchema, parseIp, z } from '@outpost/common';

export const name = z.string().trim().min(1).max(128).regex(/^[^\s/\\?#%][^/\\?#%]*$/, 'must not contain / \\ ? # % or start with a space');
export const mac = z
  .string()
  .trim()
  .regex(/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/, 'expected a MAC address like 52:54:00:12:34:56')
  .transform((m) => m.toLowerCase().replaceAll('-', ':'));
export const hostAddress = z.string().trim().min(2).max(64).regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, 'expected an address or address/prefix');
export const url = z.url({ protocol: /^https?$/ }).max(2048);
export const durationText = durationSchema;

export const services = z
  .object({
    package: z.object({ constrained: z.boolean(), url }).strict().optional(),
    task: z.object({ url }).strict().optional(),
    netboot: z.record(z.string(), z.unknown()).optional(),
    gateway: z.object({ url }).strict().optional(),
  })
  .strict();

export const tickleAddress = z.string().max(128).regex(/^[\w.:[\]-]+:\d{1,5}$/, 'expected host:port');
export const siteServerId = z.object({ id: z.string().min(1).max(64) });
export const agentListQuery = z
  .object({
    state: z.enum(['online', 'poll-only', 'offline']).optional(),
    site: z.string().max(128).optional(),
    q: z.string().max(128).optional(),
    after: z.string().max(64).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

/** An IP literal (no prefix): an approved address. */
export const ipLiteral = z
  .string()
  .trim()
  .min(2)
  .max(64)
  .regex(/^\[?[0-9a-fA-F:.]+\]?$/, 'expected an IP address')
  .refine((a) => parseIp(a.replace(/^\[(.*)\]$/, '$1')) !== undefined, 'expected an IP address');
/** A DNS name approved for a site server's URLs and certificate. */
export const dnsName = z
  .string()
  .trim()
  .min(1)
  .max(253)
  .regex(/^(?=.*[a-zA-Z-])[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}))*\.?$/, 'expected a DNS name (IP addresses go in addresses)');
export const serviceGrant = z
  .object({
    task: z.literal(true).optional(),
    package: z.object({ constrained: z.boolean() }).strict().optional(),
    netboot: z.literal(true).optional(),
    gateway: z.literal(true).optional(),
  })
  .strict();
/** A site-server grant (token or admin change). */
export const grant = z
  .object({
    services: serviceGrant,
    sites: z.array(name).max(1000).optional(),
    addresses: z.array(ipLiteral).max(256).optional(),
    names: z.array(dnsName).max(256).optional(),
  })
  .strict();
export const grantPatch = grant.partial().strict();
