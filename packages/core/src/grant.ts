import { parseIp } from '@outpost/common';
import type { ServiceGrant, ServiceName, SiteServerGrant, SiteServerRecord, SiteServerServices } from './model.js';

/** A host as grants compare it: canonical IP text, or a lowercase DNS name (no brackets, no trailing dot). */
export function canonicalHost(host: string): string {
  const h = host.trim().replace(/^\[(.*)\]$/, '$1');
  return parseIp(h)?.text ?? h.toLowerCase().replace(/\.$/, '');
}

/** Whether `host` (canonical) is an IP literal. */
export const isIpHost = (host: string): boolean => parseIp(host) !== undefined;

/** The host of a URL (canonical); undefined when the URL does not parse. */
export function urlHost(url: string): string | undefined {
  try {
    return canonicalHost(new URL(url).hostname);
  } catch {
    return undefined;
  }
}

/** The host of `host:port` / `[v6]:port` (canonical). */
export function tickleHost(address: string): string {
  const m = /^\[?([^\]]+?)\]?:\d{1,5}$/.exec(address);
  return canonicalHost(m ? m[1]! : address);
}

/** Whether a host is approved for a site server: an approved address, or an approved name. */
export function hostApproved(grant: Pick<SiteServerGrant, 'addresses' | 'names'>, host: string | undefined): boolean {
  if (host === undefined) return false;
  return isIpHost(host) ? grant.addresses.includes(host) : grant.names.includes(host);
}

/** Canonical, de-duplicated addresses (IP literals only) and names. */
export function canonicalAddresses(list: readonly string[]): string[] {
  return [...new Set(list.map((a) => parseIp(a.replace(/^\[(.*)\]$/, '$1'))?.text).filter((a): a is string => a !== undefined))];
}
export function canonicalNames(list: readonly string[]): string[] {
  return [...new Set(list.map((n) => n.trim().toLowerCase().replace(/\.$/, '')).filter((n) => n !== ''))];
}

const SERVICE_NAMES: readonly ServiceName[] = ['task', 'package', 'netboot', 'gateway'];

const serviceUrl = (services: SiteServerServices, name: ServiceName): string | undefined => (services[name] as { url?: string } | undefined)?.url;

/** `task`, `package:constrained`, ...: one label per granted service. */
export function grantLabels(services: ServiceGrant): string[] {
  return SERVICE_NAMES.filter((n) => services[n] !== undefined).map((n) => (n === 'package' ? `package:${services.package!.constrained ? 'constrained' : 'unconstrained'}` : n));
}

/**
 * What a statement of services (and a tickle address) claims beyond a grant: one line
 * per refused part, empty when everything is within it.
 */
export function claimsBeyond(grant: SiteServerGrant, services: SiteServerServices | undefined, tickleAddress: string | undefined): string[] {
  const out: string[] = [];
  for (const name of SERVICE_NAMES) {
    const stated = services?.[name];
    if (stated === undefined) continue;
    const granted = grant.services[name];
    if (granted === undefined) {
      out.push(`service '${name}' is not granted`);
      continue;
    }
    if (name === 'package' && services!.package!.constrained !== grant.services.package!.constrained) {
      out.push(`package service must be ${grant.services.package!.constrained ? 'constrained' : 'unconstrained'}`);
    }
    const url = serviceUrl(services!, name);
    if (url !== undefined && !hostApproved(grant, urlHost(url))) out.push(`${name} URL host '${urlHost(url) ?? url}' is not approved`);
  }
  if (tickleAddress !== undefined && !hostApproved(grant, tickleHost(tickleAddress))) out.push(`tickle address host '${tickleHost(tickleAddress)}' is not approved`);
  return out;
}

/** The part of `services` within `grant` (what stays after an admin narrows a grant). */
export function withinGrant(grant: SiteServerGrant, services: SiteServerServices): SiteServerServices {
  const out: SiteServerServices = {};
  for (const name of SERVICE_NAMES) {
    const s = services[name];
    if (s === undefined || grant.services[name] === undefined) continue;
    const url = serviceUrl(services, name);
    if (url !== undefined && !hostApproved(grant, urlHost(url))) continue;
    if (name === 'package') out.package = { ...services.package!, constrained: grant.services.package!.constrained };
    else (out as Record<string, unknown>)[name] = s;
  }
  return out;
}

/** Whether a site server is granted `service` AND runs it (its record states it). */
export function runsGranted(ss: SiteServerRecord, service: ServiceName): boolean {
  return ss.grant?.services[service] !== undefined && ss.services[service] !== undefined;
}

/**
 * A record written before grants: its grant is what it ran then (services, the hosts of
 * its URLs and tickle address, its stated address), so an upgrade keeps the fleet up.
 * The administrator narrows it with `PATCH /site-servers/:id`.
 */
export function migratedGrant(ss: SiteServerRecord): SiteServerGrant {
  const services: ServiceGrant = {};
  if (ss.services.task) services.task = true;
  if (ss.services.package) services.package = { constrained: ss.services.package.constrained };
  if (ss.services.netboot) services.netboot = true;
  if (ss.services.gateway) services.gateway = true;
  const hosts = [
    ...SERVICE_NAMES.map((n) => serviceUrl(ss.services, n)).filter((u): u is string => u !== undefined).map(urlHost),
    ...(ss.tickleAddress ? [tickleHost(ss.tickleAddress)] : []),
    ...(ss.address ? [ss.address.split('/')[0]!] : []),
  ].filter((h): h is string => h !== undefined);
  return { services, addresses: canonicalAddresses(hosts.filter(isIpHost)), names: canonicalNames(hosts.filter((h) => !isIpHost(h))), approvedBy: 'enrollment' };
}
