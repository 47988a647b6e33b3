// Test PKI (`@outpost/testing/pki`): a CA per "core" and leaf certificates with any
// validity, made with @peculiar/x509 (test-only; the gateway and the agent need no X.509
// library). A subpath of its own, so other tests do not load it.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

let providerSet = false;
/** Points @peculiar/x509 at Node's WebCrypto (once, at first use: nothing happens at import). */
function provider(): void {
  if (providerSet) return;
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  providerSet = true;
}
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
type Keys = webcrypto.CryptoKeyPair;

export interface TestCa {
  coreId: string;
  cert: x509.X509Certificate;
  keys: Keys;
  pem: string;
}
export interface Leaf {
  cert: string;
  key: string;
  serial: string;
}

const serial = (): string => {
  const b = randomBytes(12);
  b[0] = 0x10 + (b[0]! % 0x70);
  return b.toString('hex');
};
const keyPem = async (k: webcrypto.CryptoKey): Promise<string> =>
  `-----BEGIN PRIVATE KEY-----\n${(Buffer.from(await webcrypto.subtle.exportKey('pkcs8', k)).toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END PRIVATE KEY-----\n`;

export async function makeCa(coreId: string): Promise<TestCa> {
  provider();
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as Keys;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=Test CA ${coreId}`,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 365 * 86_400_000),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `outpost://${coreId}/core/ca` }]),
    ],
  });
  return { coreId, cert, keys, pem: cert.toString('pem') + '\n' };
}

export async function issue(ca: TestCa, o: { id: string; kind?: string; names?: string[]; notBefore?: Date; notAfter?: Date; coreId?: string }): Promise<Leaf> {
  provider();
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as Keys;
  const s = serial();
  const kind = o.kind ?? 'agent';
  const san: x509.JsonGeneralName[] = [{ type: 'url', value: `outpost://${o.coreId ?? ca.coreId}/${kind}/${o.id}` }];
  for (const n of o.names ?? []) san.push({ type: /^[\d.]+$/.test(n) ? 'ip' : 'dns', value: n });
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: s,
    subject: `CN=${o.id}`,
    issuer: ca.cert.subject,
    notBefore: o.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: o.notAfter ?? new Date(Date.now() + 30 * 86_400_000),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(san),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await keyPem(keys.privateKey), serial: s };
}

/** Writes `name.crt` / `name.key` into `dir`; returns the paths. */
export async function writeLeaf(dir: string, name: string, leaf: Leaf): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await writeFile(cert, leaf.cert);
  await writeFile(key, leaf.key, { mode: 0o600 });
  return { cert, key };
}
