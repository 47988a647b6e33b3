import { cidrContains, mostSpecific, parseCidr, parseIp, type Cidr, type IpAddress } from '@outpost/common';
import { runsGranted } from './grant.js';
import type { ServiceName, SiteRecord, SiteServerRecord } from './model.js';

/** A site's subnets, parsed once. */
export interface SiteNet {
  site: string;
  cidr: Cidr;
}

export function siteNets(sites: Iterable<SiteRecord>): SiteNet[] {
  const out: SiteNet[] = [];
  for (const s of sites) for (const n of s.subnets) out.push({ site: s.name, cidr: parseCidr(n) });
  return out;
}

/** An interface address as reported: `10.1.2.3/24` (address and its subnet) or bare. */
export interface HostAddress {
  ip: IpAddress;
  /** The interface's own subnet, when reported. */
  subnet?: Cidr | undefined;
}

export function parseHostAddress(text: string): HostAddress | undefined {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return undefined;
  if (slash < 0) return { ip };
  const prefix = Number(text.slice(slash + 1));
  const width = ip.family === 4 ? 32 : 128;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > width) return undefined;
  const shift = BigInt(width - prefix);
  const network = (ip.value >> shift) << shift;
  return { ip, subnet: { family: ip.family, network, prefix, text: `${text.slice(0, slash)}/${prefix}` } };
}

/** The sites whose subnets hold one of the addresses (most specific prefix per address). */
export function sitesOf(addresses: readonly HostAddress[], nets: readonly SiteNet[]): string[] {
  const out = new Set<string>();
  for (const a of addresses) {
    const hit = mostSpecific(nets, a.ip);
    if (hit) out.add(hit.site);
  }
  return [...out];
}

/** A site server as selection sees it. */
export interface Candidate {
  record: SiteServerRecord;
  /** Its approved addresses (the grant's, or the one it enrolled from). */
  addresses: readonly HostAddress[];
  /** Sites it serves: assigned by the grant or the admin, or through an approved address. */
  sites: readonly string[];
  online: boolean;
  /** Agents assigned to it (task servers). */
  load: number;
}

export type SelectionReason = 'site' | 'subnet' | 'any';

/** Granted `service` and running it: a site server's own statement alone never makes it a candidate. */
export function runs(c: Candidate, service: ServiceName): boolean {
  return runsGranted(c.record, service);
}

const byPreference = (a: Candidate, b: Candidate): number =>
  Number(b.online) - Number(a.online) || a.load - b.load || a.record.name.localeCompare(b.record.name) || a.record.id.localeCompare(b.record.id);

/**
 * The ordered site servers running `service` for an agent, by the rules of
 * ARCHITECTURE.md: those serving one of the agent's sites; else those with an approved address
 * on one of the agent's own subnets; else all. Online first, then least loaded.
 */
export function selectFor(
  agentSites: readonly string[],
  agentAddresses: readonly HostAddress[],
  candidates: readonly Candidate[],
  service: ServiceName,
): { reason: SelectionReason; servers: Candidate[] } {
  const running = candidates.filter((c) => runs(c, service));
  if (agentSites.length > 0) {
    const inSite = running.filter((c) => c.sites.some((s) => agentSites.includes(s)));
    if (inSite.length > 0) return { reason: 'site', servers: inSite.sort(byPreference) };
  }
  const onSubnet = running.filter(
    (c) => c.addresses.some((ca) => agentAddresses.some((a) => a.subnet && cidrContains(a.subnet, ca.ip))),
  );
  if (onSubnet.length > 0) return { reason: 'subnet', servers: onSubnet.sort(byPreference) };
  return { reason: 'any', servers: running.sort(byPreference) };
}
