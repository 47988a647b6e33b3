import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

export interface NetInfo {
  /** MAC addresses, lower case, without duplicates or all-zero ones. */
  macs: string[];
  /** `address/prefix` of every interface address (`os.networkInterfaces()` `cidr`). */
  ips: string[];
}

/**
 * The machine's MACs and addresses as the core wants them at enrollment. Internal
 * (loopback) interfaces are skipped, unless there is nothing else: an agent on a box
 * with only loopback still reports something the core can place.
 */
export function collectNetInfo(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): NetInfo {
  const all = Object.values(interfaces).flatMap((list) => list ?? []);
  const external = all.filter((i) => !i.internal);
  const chosen = external.length > 0 ? external : all;
  const macs = new Set<string>();
  const ips = new Set<string>();
  for (const i of chosen) {
    const mac = i.mac.toLowerCase();
    if (mac && mac !== '00:00:00:00:00:00') macs.add(mac);
    const prefix = i.cidr ? i.cidr.slice(i.cidr.lastIndexOf('/') + 1) : i.family === 'IPv4' ? '32' : '128';
    const address = i.address.includes('%') ? i.address.slice(0, i.address.indexOf('%')) : i.address;
    ips.add(`${address}/${prefix}`);
  }
  return { macs: [...macs], ips: [...ips] };
}
