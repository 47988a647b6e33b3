import { isIP } from 'node:net';

/** A site-server grant as `POST /api/v1/tokens` takes it. */
export interface TestGrant {
  services: { task?: true; package?: { constrained: boolean }; netboot?: true; gateway?: true };
  sites?: string[];
  addresses?: string[];
  names?: string[];
}

/** The services a site server states at enrollment (URLs may be left out). */
export interface StatedServices {
  task?: { url?: string } | undefined;
  package?: { constrained: boolean; url?: string } | undefined;
  netboot?: Record<string, unknown> | undefined;
  gateway?: { url?: string } | undefined;
}

const hostOf = (url: string): string => new URL(url).hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();

/**
 * The grant a test's site server needs for what it enrolls with: exactly its services,
 * and the hosts of its URLs and tickle address (IP literals as addresses, others as
 * names), plus `address` (its subnet membership) and any extra `names`/`addresses`.
 * Without an address of any kind the core approves the enrollment's source address.
 */
export function grantFor(services: StatedServices, opts: { address?: string | undefined; tickleAddress?: string | undefined; names?: string[]; addresses?: string[]; sites?: string[] } = {}): TestGrant {
  const granted: TestGrant['services'] = {};
  if (services.task) granted.task = true;
  if (services.package) granted.package = { constrained: services.package.constrained };
  if (services.netboot) granted.netboot = true;
  if (services.gateway) granted.gateway = true;
  const hosts = [
    ...[services.task?.url, services.package?.url, services.gateway?.url].filter((u): u is string => u !== undefined).map(hostOf),
    ...(opts.tickleAddress ? [opts.tickleAddress.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1')] : []),
    ...(opts.address ? [opts.address.split('/')[0]!] : []),
    ...(opts.addresses ?? []),
    ...(opts.names ?? []),
  ];
  const addresses = [...new Set(hosts.filter((h) => isIP(h) !== 0))];
  const names = [...new Set(hosts.filter((h) => isIP(h) === 0))];
  return { services: granted, ...(addresses.length ? { addresses } : {}), ...(names.length ? { names } : {}), ...(opts.sites ? { sites: opts.sites } : {}) };
}
