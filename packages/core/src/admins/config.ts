import { duration, z } from '@outpost/common';

const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'a lowercase name: letters, digits, . _ -');

/** What members of one identity-provider group become: roles and, optionally, a site scope. */
export const ssoGroupSchema = z
  .object({
    roles: z.array(name).min(1).max(16),
    /** Sites the group's members are scoped to; absent: every site. */
    sites: z.array(z.string().min(1).max(64)).max(1000).optional(),
  })
  .strict();

/** True for a URL on this machine, the only place a plain-HTTP identity provider is accepted. */
export function isLoopbackUrl(url: URL): boolean {
  return url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(url.hostname);
}

/** OpenID Connect single sign-on (authorization code + PKCE). */
export const oidcConfigSchema = z
  .object({
    /** The provider's issuer URL (its /.well-known/openid-configuration is read at start). */
    issuer: z.url().refine((u) => u.startsWith('https://') || isLoopbackUrl(new URL(u)), 'an https:// URL (plain http only for a provider on this machine)'),
    clientId: z.string().min(1).max(256),
    /** Confidential clients only; public clients rely on PKCE alone. */
    clientSecret: z.string().min(1).max(1024).optional(),
    /** Where the provider sends the browser back; @default `<publicUrl>/api/v1/session/sso/callback` */
    redirectUrl: z.url().optional(),
    scopes: z.array(z.string().min(1).max(64)).max(16).default(['openid', 'profile', 'email', 'groups']),
    /** The claim holding the user's groups. @default 'groups' */
    groupsClaim: z.string().min(1).max(128).default('groups'),
    /** The claim that names the administrator. @default 'preferred_username' */
    nameClaim: z.string().min(1).max(128).default('preferred_username'),
    /** Group → roles and scope. A user in no mapped group is refused (`CORE_SSO_NO_ROLE`). */
    groups: z.record(z.string().min(1).max(256), ssoGroupSchema),
    /** The label of the console's sign-in button. @default 'Single sign-on' */
    label: z.string().min(1).max(64).default('Single sign-on'),
  })
  .strict();

/** The `core.admins:` section. */
export const adminsConfigSchema = z
  .object({
    session: z
      .object({
        /** A console session ends after this long without a request. @default '30m' */
        idle: duration('30m'),
        /** ...and this long after sign-in in any case. @default '12h' */
        absolute: duration('12h'),
      })
      .strict()
      .prefault({}),
    lockout: z
      .object({
        /** Failed sign-ins in a row before the account is locked. @default 5 */
        after: z.number().int().min(1).max(100).default(5),
        /** The first lock; each further failure doubles it. @default '30s' */
        base: duration('30s'),
        /** The longest lock. @default '15m' */
        max: duration('15m'),
        /** Password sign-ins one source address may try per minute (over all accounts). @default 30 */
        perAddressPerMinute: z.number().int().min(1).max(100_000).default(30),
      })
      .strict()
      .prefault({}),
    password: z
      .object({
        /** @default 12 */
        minLength: z.number().int().min(8).max(128).default(12),
        /** Earlier passwords a new one may not repeat. @default 5 */
        history: z.number().int().min(0).max(24).default(5),
      })
      .strict()
      .prefault({}),
    /** Administrator API tokens expire after this unless given one. @default '90d' */
    tokenExpiry: duration('90d'),
    oidc: oidcConfigSchema.optional(),
  })
  .strict()
  .prefault({});

export type AdminsConfig = z.output<typeof adminsConfigSchema>;
export type OidcConfig = z.output<typeof oidcConfigSchema>;
