import ipaddr from 'ipaddr.js';
import { CommonErrors, OutpostError } from './errors.js';

export type IpFamily = 4 | 6;

/** A parsed network: `10.1.0.0/16` or `2001:db8::/32`. */
export interface Cidr {
  readonly family: IpFamily;
  /** Network address as an integer (host bits cleared). */
  readonly network: bigint;
  readonly prefix: number;
  /** Canonical text, e.g. `10.1.0.0/16`. */
  readonly text: string;
}

/** A parsed address. IPv4-mapped IPv6 (`::ffff:10.1.2.3`, as sockets report) is IPv4. */
export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
  readonly text: string;
}

const bitsOf = (family: IpFamily): number => (family === 4 ? 32 : 128);

function bytesToBigint(bytes: number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function normalize(addr: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) return (addr as ipaddr.IPv6).toIPv4Address();
  return addr;
}

/** Parses an address; undefined when it is not one. */
export function parseIp(text: string): IpAddress | undefined {
  const t = text.trim();
  if (!ipaddr.isValid(t) || (!t.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(t))) return undefined;
  const addr = normalize(ipaddr.parse(t));
  const family: IpFamily = addr.kind() === 'ipv4' ? 4 : 6;
  return { family, value: bytesToBigint(addr.toByteArray()), text: addr.toString() };
}

/**
 * Parses `address/prefix` strictly: host bits must be zero (`10.1.0.0/16`, not
 * `10.1.2.3/16`), prefix within the family's width. Throws `COMMON_BAD_CIDR` (400).
 */
export function parseCidr(text: string): Cidr {
  const bad = (why: string): never => {
    throw new OutpostError(CommonErrors.BAD_CIDR, `bad CIDR '${text}': ${why}`, { status: 400, details: { cidr: text } });
  };
  const t = typeof text === 'string' ? text.trim() : '';
  const slash = t.indexOf('/');
  if (slash < 0) return bad('expected address/prefix, e.g. 10.1.0.0/16 or 2001:db8::/32');
  const ip = parseIp(t.slice(0, slash));
  if (!ip || (ip.family === 4 && t.slice(0, slash).includes(':'))) return bad('not an IPv4 or IPv6 address');
  if (t.includes('%')) return bad('a network has no zone id (%...)');
  const prefixText = t.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return bad('the prefix length must be a number');
  const prefix = Number(prefixText);
  const width = bitsOf(ip.family);
  if (prefix > width) return bad(`the prefix length must be 0..${width}`);
  const hostMask = (1n << BigInt(width - prefix)) - 1n;
  if ((ip.value & hostMask) !== 0n) return bad(`host bits are set; did you mean ${formatNetwork(ip.family, ip.value & ~hostMask)}/${prefix}?`);
  return { family: ip.family, network: ip.value, prefix, text: `${ip.text}/${prefix}` };
}

function formatNetwork(family: IpFamily, value: bigint): string {
  const width = bitsOf(family);
  const bytes: number[] = [];
  for (let i = width / 8 - 1; i >= 0; i--) bytes.push(Number((value >> BigInt(i * 8)) & 0xffn));
  return ipaddr.fromByteArray(bytes).toString();
}

/** True when `ip` lies in `cidr` (families must match). */
export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false;
  const shift = BigInt(bitsOf(cidr.family) - cidr.prefix);
  return ip.value >> shift === cidr.network >> shift;
}

/**
 * Of the entries whose network holds `ip`, the one with the longest prefix (the most
 * specific wins on overlap); undefined when none does.
 */
export function mostSpecific<T extends { cidr: Cidr }>(entries: Iterable<T>, ip: IpAddress): T | undefined {
  let best: T | undefined;
  for (const e of entries) {
    if (cidrContains(e.cidr, ip) && (!best || e.cidr.prefix > best.cidr.prefix)) best = e;
  }
  return best;
}
