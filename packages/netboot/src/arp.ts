import { readFileSync } from 'node:fs';

/**
 * IPv4 → MAC from the kernel's neighbour table (/proc/net/arp). TFTP and HTTP requests
 * carry only an address; the table tells which machine it is (the peer is on our LAN).
 * Returns undefined off Linux or when there is no entry.
 */
export function macFromArp(ip: string, table = '/proc/net/arp'): string | undefined {
  let text: string;
  try {
    text = readFileSync(table, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1, 4097)) {
    const cols = line.trim().split(/\s+/);
    if (cols[0] === ip && cols[3] && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(cols[3]) && cols[3] !== '00:00:00:00:00:00') return cols[3];
  }
  return undefined;
}
