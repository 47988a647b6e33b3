import { X509Certificate } from 'node:crypto';

/** What the gateway knows about one core: whom to let in, and where they may go. */
export interface CoreTrust {
  /** The core id named in its certificates (`outpost://<coreId>/...`). */
  coreId: string;
  caPem: string;
  /** SHA-256 fingerprint of the CA certificate (as Node prints it: `AA:BB:...`). */
  caFingerprint: string;
  /** Allowed `host:port` targets. */
  routes: Set<string>;
  /**
   * Addresses to dial per target, from a linked core's table (a site server's name is
   * never resolved: the core approved these addresses for it). A target not here is
   * dialled as named (static routes, the core's own URL, IP literals).
   */
  dial?: Map<string, string[]> | undefined;
  /** The core's own `host:port` (enrollment is forwarded there). */
  coreTarget?: string | undefined;
  /** Its URL (enrollment forwarding picks http or https). */
  coreUrl?: string | undefined;
  /** Revoked serials (lowercase hex, no leading zeros). */
  revoked: Set<string>;
  /** Serials held in the core's quarantine list. */
  held: Set<string>;
  /** Last successful fetch of routes and revocations (ms), undefined for static cores. */
  fetchedAt?: number | undefined;
  stale: boolean;
}

/** The core id a CA certificate names in its `outpost://<id>/core/ca` SAN URI. */
export function coreIdOfCa(ca: X509Certificate): string | undefined {
  const m = /URI:outpost:\/\/([\w.-]+)\/core\/ca/.exec(ca.subjectAltName ?? '');
  return m?.[1];
}

export function caFingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/** A principal as its certificate names it: SAN URI `outpost://<coreId>/<kind>/<id>`. */
export function principalOf(subjectAltName: string | undefined): { coreId: string; kind: string; id: string } | undefined {
  if (!subjectAltName) return undefined;
  const m = /URI:outpost:\/\/([\w.-]{1,128})\/(agent|site-server)\/([\w.-]{1,128})(?:,|$)/.exec(subjectAltName);
  return m ? { coreId: m[1]!, kind: m[2]!, id: m[3]! } : undefined;
}

export function normalizeSerial(serial: string): string {
  return serial.replace(/:/g, '').toLowerCase().replace(/^0+(?=.)/, '');
}
