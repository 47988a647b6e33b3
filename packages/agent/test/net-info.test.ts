import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { collectNetInfo } from '../src/index.js';

const lo: NetworkInterfaceInfo[] = [
  { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' },
  { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '00:00:00:00:00:00', internal: true, cidr: '::1/128', scopeid: 0 },
];
const eth0: NetworkInterfaceInfo[] = [
  { address: '10.1.2.3', netmask: '255.255.0.0', family: 'IPv4', mac: '52:54:00:AB:CD:EF', internal: false, cidr: '10.1.2.3/16' },
  { address: 'fe80::1%eth0', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '52:54:00:AB:CD:EF', internal: false, cidr: 'fe80::1%eth0/64', scopeid: 2 },
];

describe('collectNetInfo', () => {
  it('reports external interfaces as address/prefix, MACs lower case and once, skipping loopback', () => {
    expect(collectNetInfo({ lo, eth0 })).toEqual({ macs: ['52:54:00:ab:cd:ef'], ips: ['10.1.2.3/16', 'fe80::1/64'] });
  });

  it('falls back to loopback when there is nothing else', () => {
    expect(collectNetInfo({ lo })).toEqual({ macs: [], ips: ['127.0.0.1/8', '::1/128'] });
  });

  it('reads the real interfaces by default', () => {
    const info = collectNetInfo();
    expect(info.ips.length).toBeGreaterThan(0);
    for (const ip of info.ips) expect(ip).toMatch(/\/\d+$/);
  });
});
