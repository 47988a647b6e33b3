import { generateKeyPairSync, sign } from 'node:crypto';
import { isIP } from 'node:net';

/*
 * PKCS#10 certificate request (RFC 2986), ECDSA P-256 / SHA-256 only:
 *
 *   CertificationRequest ::= SEQUENCE {
 *     certificationRequestInfo SEQUENCE {
 *       version       INTEGER 0,
 *       subject       Name (one RDN: CN=<commonName>),
 *       subjectPKInfo SubjectPublicKeyInfo (the key's SPKI DER),
 *       attributes    [0] { extensionRequest { subjectAltName (dNSName [2] | iPAddress [7]) } } },
 *     signatureAlgorithm SEQUENCE { ecdsa-with-SHA256 },
 *     signature          BIT STRING (DER ECDSA-Sig-Value) }
 *
 * Small enough to write by hand, so agents and gateways need no X.509 library.
 */

const OID = {
  commonName: [0x55, 0x04, 0x03],
  ecdsaWithSha256: [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
  extensionRequest: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e],
  subjectAltName: [0x55, 0x1d, 0x11],
} as const;

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const tlv = (tag: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
};
const seq = (...parts: Buffer[]): Buffer => tlv(0x30, ...parts);
const set = (...parts: Buffer[]): Buffer => tlv(0x31, ...parts);
const oid = (bytes: readonly number[]): Buffer => tlv(0x06, Buffer.from(bytes));

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.flatMap((g) => [(parseInt(g, 16) >> 8) & 0xff, parseInt(g, 16) & 0xff]));
}

export interface KeyAndCsr {
  /** PKCS#8 PEM of the new private key. */
  keyPem: string;
  /** PEM certificate request. */
  csrPem: string;
}

/**
 * Makes an ECDSA P-256 key and a CSR for it, with `CN=<commonName>` and optional DNS
 * names / IP addresses as subjectAltName. The core's CA decides what ends up in the
 * certificate (it names the principal itself).
 */
export function createKeyAndCsr(commonName: string, names: string[] = []): KeyAndCsr {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const subject = seq(set(seq(oid(OID.commonName), tlv(0x0c, Buffer.from(commonName, 'utf8')))));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const generalNames = names.map((n) => (isIP(n) ? tlv(0x87, ipBytes(n)) : tlv(0x82, Buffer.from(n, 'ascii'))));
  const attributes =
    generalNames.length === 0
      ? tlv(0xa0)
      : tlv(0xa0, seq(oid(OID.extensionRequest), set(seq(seq(oid(OID.subjectAltName), tlv(0x04, seq(...generalNames)))))));
  const info = seq(tlv(0x02, Buffer.from([0])), subject, spki, attributes);
  const signature = sign('sha256', info, privateKey);
  const csr = seq(info, seq(oid(OID.ecdsaWithSha256)), tlv(0x03, Buffer.from([0]), signature));
  const b64 = csr.toString('base64').match(/.{1,64}/g) ?? [];
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    csrPem: `-----BEGIN CERTIFICATE REQUEST-----\n${b64.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`,
  };
}
