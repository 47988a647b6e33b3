import { X509Certificate, createPrivateKey, randomBytes, sign as cryptoSign, webcrypto, type KeyObject } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { newId, OutpostError, writeFileAtomic } from '@outpost/common';
import { CaErrors } from './errors.js';
import type { CertKind } from './store.js';
import { EC_ALG, loadX509, principalUri, type X509Module } from './x509.js';

/** Files of the CA in `<dataDir>/ca/`. */
export const CA_FILES = { dir: 'ca', key: 'ca.key', cert: 'ca.crt', coreId: 'core-id' } as const;

export interface IssueInput {
  /** The subject's public key, from a verified CSR. */
  publicKey: CryptoKey;
  principal: string;
  kind: CertKind;
  /** DNS names / IP addresses (site servers and the core only). */
  names?: string[];
  lifetimeMs: number;
}

export interface Issued {
  serial: string;
  pem: string;
  notAfter: number;
}

const pemBody = (pem: string): Buffer =>
  Buffer.from(
    pem
      .replace(/-----(BEGIN|END)[^-]*-----/g, '')
      .replace(/\s+/g, ''),
    'base64',
  );

const toPem = (der: ArrayBuffer, label: string): string =>
  `-----BEGIN ${label}-----\n${(Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END ${label}-----\n`;

/** DER INTEGER of a non-negative number (the CRL number extension). */
function derInteger(n: number): Uint8Array {
  let hex = Math.max(0, Math.floor(n)).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
  const body = Buffer.from(hex, 'hex');
  return Uint8Array.from([0x02, body.length, ...body]);
}

/** A fresh serial: 16 random bytes, first byte in 0x10..0x7f (positive, no leading zero). */
/** sha256 of a certificate's DER, lower-case hex: what an agent's `caFingerprint` and a hierarchy join token pin, and a parent records of a child's link certificate. */
export function certificateFingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
}

export function newSerial(): string {
  const b = randomBytes(16);
  b[0] = 0x10 + (b[0]! % 0x70);
  return b.toString('hex');
}

/**
 * The core's certificate authority: an ECDSA P-256 key and self-signed certificate made
 * on first start in `<dataDir>/ca/` (key mode 0600), and a core id that names this core
 * in every certificate it issues (`outpost://<coreId>/<kind>/<id>`).
 */
export class Authority {
  private constructor(
    readonly x509: X509Module,
    readonly coreId: string,
    readonly cert: InstanceType<X509Module['X509Certificate']>,
    readonly certPem: string,
    private readonly signingKey: CryptoKey,
    private readonly keyObject: KeyObject,
  ) {}

  /** Loads the CA from `dir`, or creates it there. */
  static async open(dataDir: string, lifetimeMs: number): Promise<{ authority: Authority; created: boolean }> {
    const x509 = await loadX509();
    const dir = join(dataDir, CA_FILES.dir);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const keyFile = join(dir, CA_FILES.key);
    const certFile = join(dir, CA_FILES.cert);
    const idFile = join(dir, CA_FILES.coreId);
    let keyPem: string | undefined;
    try {
      keyPem = await readFile(keyFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (keyPem !== undefined) {
      try {
        const certPem = await readFile(certFile, 'utf8');
        const coreId = (await readFile(idFile, 'utf8')).trim();
        const key = await webcrypto.subtle.importKey('pkcs8', pemBody(keyPem), EC_ALG, false, ['sign']);
        const cert = new x509.X509Certificate(certPem);
        return { authority: new Authority(x509, coreId, cert, certPem, key, createPrivateKey(keyPem)), created: false };
      } catch (cause) {
        throw new OutpostError(CaErrors.FILES, `the CA files in ${dir} are unreadable or damaged: ${(cause as Error).message}`, { cause, details: { dir } });
      }
    }
    const coreId = newId('core');
    const keys = await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify']);
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: newSerial(),
      name: `CN=Outpost CA ${coreId}, O=Outpost`,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + lifetimeMs),
      keys,
      signingAlgorithm: EC_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `outpost://${coreId}/core/ca` }]),
      ],
    });
    const keyPemNew = toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
    const certPem = cert.toString('pem') + '\n';
    await writeFileAtomic(keyFile, keyPemNew, { mode: 0o600 });
    await writeFileAtomic(certFile, certPem, { mode: 0o644 });
    await writeFileAtomic(idFile, `${coreId}\n`, { mode: 0o644 });
    const signKey = await webcrypto.subtle.importKey('pkcs8', pemBody(keyPemNew), EC_ALG, false, ['sign']);
    return { authority: new Authority(x509, coreId, cert, certPem, signKey, createPrivateKey(keyPemNew)), created: true };
  }

  /** Parses and verifies a PEM CSR; returns its public key and requested SAN names. */
  async checkCsr(pem: string): Promise<{ publicKey: CryptoKey; names: string[] }> {
    const x509 = this.x509;
    let csr: InstanceType<X509Module['Pkcs10CertificateRequest']>;
    try {
      csr = new x509.Pkcs10CertificateRequest(pem);
    } catch (cause) {
      throw new OutpostError(CaErrors.BAD_CSR, 'the CSR is not a PEM PKCS#10 certificate request', { status: 400, cause });
    }
    const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string; modulusLength?: number };
    const okKey = (alg.name === 'ECDSA' && (alg.namedCurve === 'P-256' || alg.namedCurve === 'P-384')) || (alg.name === 'RSASSA-PKCS1-v1_5' && (alg.modulusLength ?? 0) >= 2048);
    if (!okKey) throw new OutpostError(CaErrors.BAD_CSR, 'the CSR key must be ECDSA P-256/P-384 or RSA of at least 2048 bits', { status: 400 });
    let valid = false;
    try {
      valid = await csr.verify();
    } catch {
      valid = false;
    }
    if (!valid) throw new OutpostError(CaErrors.BAD_CSR, 'the CSR signature does not verify', { status: 400 });
    const sanRaw = csr.getExtension('2.5.29.17');
    const san = sanRaw ? new x509.SubjectAlternativeNameExtension(sanRaw.rawData) : undefined;
    const names = (san?.names.items ?? []).filter((n) => n.type === 'dns' || n.type === 'ip').map((n) => n.value);
    let publicKey: CryptoKey;
    try {
      publicKey = await csr.publicKey.export(alg.name === 'ECDSA' ? { name: 'ECDSA', namedCurve: alg.namedCurve! } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, ['verify']);
    } catch (cause) {
      throw new OutpostError(CaErrors.BAD_CSR, 'the CSR public key cannot be read', { status: 400, cause });
    }
    return { publicKey, names };
  }

  /** Issues a certificate for a principal (CN = id, SAN URI names core, kind and id). */
  async issue(input: IssueInput): Promise<Issued> {
    const x509 = this.x509;
    const now = Date.now();
    const notAfter = Math.min(now + input.lifetimeMs, this.cert.notAfter.getTime());
    const serial = newSerial();
    const names = (input.names ?? []).map((n) => ({ type: isIP(n) ? ('ip' as const) : ('dns' as const), value: n }));
    const server = input.kind !== 'agent';
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: `CN=${input.principal}, OU=${input.kind}, O=Outpost`,
      issuer: this.cert.subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(notAfter),
      signingAlgorithm: EC_ALG,
      publicKey: input.publicKey,
      signingKey: this.signingKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension(server ? [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth] : [x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: principalUri(this.coreId, input.kind, input.principal) }, ...(server ? names : [])]),
        await x509.AuthorityKeyIdentifierExtension.create(this.cert),
      ],
    });
    return { serial, pem: cert.toString('pem') + '\n', notAfter };
  }

  /** A signed CRL (DER) listing `entries`. */
  async crl(entries: Array<{ serial: string; revokedAt: number }>, number: number, lifetimeMs: number): Promise<Buffer> {
    const x509 = this.x509;
    const now = Date.now();
    const crl = await x509.X509CrlGenerator.create({
      issuer: this.cert.subject,
      thisUpdate: new Date(now - 60_000),
      nextUpdate: new Date(now + lifetimeMs),
      entries: entries.map((e) => ({ serialNumber: e.serial, revocationDate: new Date(e.revokedAt) })),
      signingKey: this.signingKey,
      signingAlgorithm: EC_ALG,
      extensions: [new x509.Extension('2.5.29.20', false, derInteger(number)), await x509.AuthorityKeyIdentifierExtension.create(this.cert)],
    });
    return Buffer.from(crl.rawData);
  }

  /**
   * Signs `outpost-probe\0<coreId>\0<nonce>` (ECDSA P-256, SHA-256, IEEE P1363 r‖s,
   * base64): an agent checks it against the CA certificate it got at enrollment to know
   * it reached its own core and not a captive portal.
   */
  signProbe(nonce: string): string {
    return cryptoSign('sha256', Buffer.from(`outpost-probe\0${this.coreId}\0${nonce}`), { key: this.keyObject, dsaEncoding: 'ieee-p1363' }).toString('base64');
  }
}

export { toPem, pemBody };
