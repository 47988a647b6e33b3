/**
 * A copy of an appliance config (e.g. configs/all-in-one.yaml) made safe for a test on
 * this machine: every `port`/`ticklePort` becomes 0 (any free port), the local core's URL
 * follows, and proxyDHCP is off — a test never answers DHCP on the host's real
 * interfaces (the netboot e2e test does that inside its own namespaces).
 */
export function loopbackConfig(raw: Record<string, unknown>, localCoreUrl: string): Record<string, unknown> {
  const zeroed = portZero(raw, localCoreUrl) as Record<string, unknown>;
  const netboot = zeroed.netboot;
  if (netboot && typeof netboot === 'object' && !Array.isArray(netboot)) {
    const nb = netboot as Record<string, unknown>;
    nb.proxyDhcp = { ...(nb.proxyDhcp as Record<string, unknown> | undefined), enabled: false };
  }
  return zeroed;
}

function portZero(v: unknown, localCore: string): unknown {
  if (Array.isArray(v)) return v.map((x) => portZero(x, localCore));
  if (typeof v === 'string') return v === localCore ? 'http://127.0.0.1:0' : v;
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, /^(port|ticklePort)$/.test(k) && typeof x === 'number' ? 0 : portZero(x, localCore)]));
}
