import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';

/**
 * The core's signature over a run (`v` 1), made once per run with its Ed25519
 * work-signing key; agents verify it with the key pinned at enrollment.
 *
 *   body   = canonicalJson({ v: 1, run, job, steps, expiresAt, nonce })
 *   sig    = base64(Ed25519(workKey, body))
 *   digest = hex(sha256(body))       -- what per-agent tickets bind to
 *
 * A cancel is signed apart, over canonicalJson({ v: 1, run, cancelled: true }). Verifiers
 * never throw: malformed input is `false` or `undefined`.
 */
export interface SignedRunFields {
  run: string;
  job: string;
  steps: unknown;
  expiresAt: number;
  nonce: string;
}

const SIG_RE = /^[A-Za-z0-9+/]{86}==$/;

/** The canonical bytes that are signed; undefined when `steps` is not plain JSON. */
export function runBody(r: SignedRunFields): string | undefined {
  return canonicalJson({ v: 1, run: r.run, job: r.job, steps: r.steps, expiresAt: r.expiresAt, nonce: r.nonce });
}

/** Hex sha256 of a signed body. */
export function runDigest(body: string): string {
  return createHash('sha256').update(body).digest('hex');
}

export const cancelBody = (run: string): string => canonicalJson({ v: 1, run, cancelled: true })!;

/** Signs a body (run or cancel) with the core's private key: base64. */
export function signWork(privateKey: KeyObject, body: string): string {
  return sign(null, Buffer.from(body), privateKey).toString('base64');
}

/** Whether `sig` is the core's Ed25519 signature over `body`. */
export function verifyWork(publicKey: KeyObject, body: string, sig: unknown): boolean {
  if (typeof sig !== 'string' || !SIG_RE.test(sig)) return false;
  try {
    return verify(null, Buffer.from(body), publicKey, Buffer.from(sig, 'base64'));
  } catch {
    return false;
  }
}

/** The public half as enrollment sends it (`workKey`): SPKI DER, base64. */
export function exportWorkKey(publicKey: KeyObject): string {
  return publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
}

/** Parses a pinned `workKey` (SPKI DER base64, or PEM); undefined unless it is an Ed25519 public key. */
export function parseWorkKey(text: unknown): KeyObject | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 4_096) return undefined;
  try {
    const key = text.includes('-----BEGIN') ? createPublicKey(text) : createPublicKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'spki' });
    return key.asymmetricKeyType === 'ed25519' ? key : undefined;
  } catch {
    return undefined;
  }
}
