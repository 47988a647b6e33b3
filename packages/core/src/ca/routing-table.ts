import { createHash } from 'node:crypto';
import type { Registry } from '../registry.js';

export interface RouteTarget {
  /** `host:port` as a client names it in CONNECT (lowercase host, IPv6 in brackets). */
  target: string;
  kind: 'core' | 'site-server';
  id: string;
  url: string;
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
 * What a gateway may tunnel agents of this core to: the core's own URL and the URLs of
 * its site servers' services. `serial` changes exactly when the table does.
 */
export function routingTable(coreId: string, coreUrl: string, registry: Registry): { coreId: string; serial: string; targets: RouteTarget[] } {
  const targets = new Map<string, RouteTarget>();
  const add = (url: string | undefined, kind: RouteTarget['kind'], id: string): void => {
    const t = url === undefined ? undefined : urlTarget(url);
    if (t && !targets.has(t)) targets.set(t, { target: t, kind, id, url: url! });
  };
  add(coreUrl, 'core', coreId);
  for (const ss of [...registry.store.siteServers.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    add(ss.services.package?.url, 'site-server', ss.id);
    add(ss.services.task?.url, 'site-server', ss.id);
  }
  const list = [...targets.values()];
  const serial = createHash('sha256').update(JSON.stringify(list)).digest('hex').slice(0, 16);
  return { coreId, serial, targets: list };
}
