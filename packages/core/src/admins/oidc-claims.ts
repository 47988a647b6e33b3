import type { OidcConfig } from './config.js';

/** What the provider's groups grant: the union of the mapped groups' roles and sites. */
export interface SsoGrant {
  /** Mapped groups the user is in, in config order. */
  groups: string[];
  roles: string[];
  /** Undefined (every site) when any mapped group has no `sites`. */
  sites: string[] | undefined;
}

/**
 * The groups in a claim value: an array of strings, or one string (some providers send a
 * single group so). Anything else holds no group.
 */
export function groupsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((g): g is string => typeof g === 'string');
  return [];
}

/**
 * The administrator name in a claim value: a string, lowercased (administrator names are
 * lowercase; providers compare user names without case). Undefined when absent or not a string.
 */
export function nameOf(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value.toLowerCase() : undefined;
}

/**
 * Maps the user's groups through `core.admins.oidc.groups`: roles are the union, and so are
 * sites, except that one mapped group without `sites` leaves the user unscoped. Undefined
 * when the user is in no mapped group.
 */
export function grantOf(mapping: OidcConfig['groups'], groups: readonly string[]): SsoGrant | undefined {
  const member = new Set(groups);
  const matched = Object.keys(mapping).filter((g) => member.has(g));
  if (matched.length === 0) return undefined;
  const roles = new Set<string>();
  const sites = new Set<string>();
  let unscoped = false;
  for (const g of matched) {
    const m = mapping[g]!;
    for (const r of m.roles) roles.add(r);
    if (m.sites === undefined) unscoped = true;
    else for (const s of m.sites) sites.add(s);
  }
  return { groups: matched, roles: [...roles], sites: unscoped ? undefined : [...sites].sort() };
}
