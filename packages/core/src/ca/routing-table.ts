import { createHash } from 'node:crypto';
import { hostApproved, isIpHost, runsGranted, urlHost } from '../grant.js';
import type { Registry } from '../registry.js';

export interface RouteTarget {
  /** `host:port` as a client names it in CONNECT (lowercase host, IPv6 in brackets). */
  target: string;
  kind: 'core' | 'site-server';
  id: string;
  url: string;
  /**
   * IP addresses the gateway dials for this target: the URL's own IP literal, or (a DNS
   * name) the site server's approved addresses. Empty for the core's URL by name: the
   * gateway's own config names the core. A gateway never resolves a name a site server chose.
   */
  addresses: string[];
}

/** `host:port` of a URL, default port by scheme; undefined for a URL that does not parse. */
export function urlTarget(url: string): string | undefined {
  try {
    const u = new URL(url);
    const port = u.port || (u.protocol === 'https:' ? '443' : u.protocol === 'http:' ? '80' : '');
    if (!port) return undefined;
    return `${u.hostname.toLowerCase()}:${port}`;
  } catch {
    return undefined;
  }
}

/**
 * What a gateway may tunnel agents of this core to: the core's own URL and the package
 * and task URLs of site servers granted those services, on hosts approved for them, each
 * with the addresses to dial. `serial` changes exactly when the table does.
 */
export function routingTable(coreId: string, coreUrl: string, registry: Registry): { coreId: string; serial: string; targets: RouteTarget[] } {
  const targets = new Map<string, RouteTarget>();
  const add = (url: string | undefined, kind: RouteTarget['kind'], id: string, addresses: (host: string) => string[]): void => {
    const t = url === undefined ? undefined : urlTarget(url);
    const host = url === undefined ? undefined : urlHost(url);
    if (!t || host === undefined || targets.has(t)) return;
    const dial = isIpHost(host) ? [host] : addresses(host);
    if (kind === 'site-server' && dial.length === 0) return;
    targets.set(t, { target: t, kind, id, url: url!, addresses: dial });
  };
  add(coreUrl, 'core', coreId, () => []);
  for (const ss of [...registry.store.siteServers.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    for (const service of ['package', 'task'] as const) {
      const url = ss.services[service]?.url;
      if (!runsGranted(ss, service) || url === undefined || !hostApproved(ss.grant, urlHost(url))) continue;
      add(url, 'site-server', ss.id, () => ss.grant.addresses);
    }
  }
  const list = [...targets.values()];
  const serial = createHash('sha256').update(JSON.stringify(list)).digest('hex').slice(0, 16);
  return { coreId, serial, targets: list };
}
