import { X509Certificate, createHash, webcrypto } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { Authority, toPem } from '../ca/authority.js';
import { EC_ALG } from '../ca/x509.js';

/** A link certificate lives as long as the CA that issued it allows (re-joining issues a new one). */
const LINK_CERT_LIFETIME = 10 * 365 * 24 * 3_600_000;

/** A key and a certificate for this core's end of a link, issued by this core's own CA (CN = core id). */
export async function issueLinkCert(authority: Authority, names: string[] = []): Promise<{ certPem: string; keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify']);
  const issued = await authority.issue({ publicKey: keys.publicKey, principal: authority.coreId, kind: 'core', names, lifetimeMs: LINK_CERT_LIFETIME });
  const keyPem = toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  return { certPem: issued.pem, keyPem };
}

/** Whether `certPem` was issued by `caPem` for core `coreId` (CN) and is valid now. */
export function issuedFor(certPem: string, caPem: string, coreId: string, now = Date.now()): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    if (!cert.verify(ca.publicKey) || !cert.checkIssued(ca)) return false;
    if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) < now) return false;
    return cnOf(cert.subject) === coreId;
  } catch {
    return false;
  }
}

export function cnOf(subject: string): string | undefined {
  return /(?:^|\n|,\s*)CN=([^\n,]+)/.exec(subject)?.[1]?.trim();
}

/** The fingerprint of the certificate a TLS peer presented (empty when none). */
export function peerFingerprint(peer: PeerCertificate | undefined): string {
  if (!peer?.raw) return '';
  return createHash('sha256').update(peer.raw).digest('hex');
}

/** The DER of a PEM certificate as PEM again from a peer's raw bytes. */
export function peerPem(peer: PeerCertificate): string {
  return `-----BEGIN CERTIFICATE-----\n${peer.raw.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`.replace(/\n\n/g, '\n');
}
