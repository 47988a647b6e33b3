import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect as tlsConnect, type DetailedPeerCertificate } from 'node:tls';
import { OutpostError, z } from '@outpost/common';
import { AgentErrors } from './errors.js';

/** A sha256 fingerprint: 64 hex digits, colons between bytes allowed, an optional `sha256:` prefix; parsed to lowercase hex. */
export const caFingerprintSchema = z
  .string()
  .trim()
  .regex(/^(sha256:)?(?:[0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/i, { message: 'expected a sha256 fingerprint: 64 hex digits, colons allowed' })
  .transform((s) => normalizeFingerprint(s));

export function normalizeFingerprint(s: string): string {
  return s.trim().toLowerCase().replace(/^sha256:/, '').replace(/:/g, '');
}

/** The sha256 fingerprint (lowercase hex) of the first certificate of a PEM text; undefined when it holds none. */
export function caFingerprintOf(pem: string): string | undefined {
  try {
    return normalizeFingerprint(new X509Certificate(pem).fingerprint256);
  } catch {
    return undefined;
  }
}

/** Throws `AGENT_CA_MISMATCH` unless `pem` is a certificate with the pinned fingerprint. */
export function checkCaPin(pem: string | undefined, pinned: string, where: string): void {
  const got = pem === undefined ? undefined : caFingerprintOf(pem);
  if (got === pinned) return;
  throw new OutpostError(
    AgentErrors.CA_MISMATCH,
    got === undefined
      ? `${where}: the core sent no CA certificate, and caFingerprint ${pinned} is pinned`
      : `${where}: the core's CA has fingerprint ${got}, not the pinned caFingerprint ${pinned}; refusing this core`,
    { details: { expected: pinned, got } },
  );
}

/**
 * Before an https core is sent the token: the CA the core presents in its TLS chain (the
 * core serves its certificate with its CA's), taken only when it has the pinned
 * fingerprint; the enrollment that follows is then verified against it (as any TLS, host
 * name included). This handshake is not verified and carries no data. A chain without the
 * pinned CA is refused (`AGENT_CA_MISMATCH`), unless the system already trusts it (an
 * admin-supplied certificate from a public CA): then the pin is checked on the CA the
 * enrollment answer carries. Resolves undefined in that case.
 */
export async function caFromTlsChain(coreUrl: string, pinned: string, timeoutMs: number): Promise<string | undefined> {
  const url = new URL(coreUrl);
  const chain = await new Promise<{ certs: X509Certificate[]; authorized: boolean }>((resolve, reject) => {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const socket = tlsConnect({ host, port: Number(url.port || 443), ...(isIP(host) ? {} : { servername: host }), rejectUnauthorized: false, timeout: timeoutMs }, () => {
      const certs: X509Certificate[] = [];
      const seen = new Set<string>();
      for (let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true); c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
        seen.add(c.fingerprint256);
        certs.push(new X509Certificate(c.raw));
      }
      const authorized = socket.authorized;
      socket.end();
      resolve({ certs, authorized });
    });
    socket.on('timeout', () => socket.destroy(new Error(`no TLS handshake in ${timeoutMs} ms`)));
    socket.on('error', (cause) => reject(new OutpostError(AgentErrors.CORE_UNREACHABLE, `cannot reach the core at ${coreUrl}: ${cause.message}`, { cause })));
  });
  const ca = chain.certs.find((c) => normalizeFingerprint(c.fingerprint256) === pinned);
  if (ca) return ca.toString();
  if (chain.authorized) return undefined;
  throw new OutpostError(
    AgentErrors.CA_MISMATCH,
    `the core at ${coreUrl} presents no certificate of the CA with the pinned caFingerprint ${pinned} (it presents ${chain.certs.map((c) => normalizeFingerprint(c.fingerprint256)).join(', ') || 'none'}); refusing this core`,
    { details: { expected: pinned, got: chain.certs.map((c) => normalizeFingerprint(c.fingerprint256)) } },
  );
}
