import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** 32 random bytes, base64url: a secret, an enrollment token or an admin token. */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** A short random id with a kind prefix: `ag_3kT9...`, `ss_...`. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

/**
 * What is stored for a bearer secret. Secrets are 256 random bits, so a fast hash is
 * enough (no password stretching needed); the label keeps it distinct from the UDP key.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update('outpost-auth\0').update(secret).digest('hex');
}

/**
 * The HMAC key for a principal's UDP datagrams (tickles to it, heartbeats from it),
 * derived from its secret so the server can verify datagrams without storing the
 * secret that authenticates HTTP calls.
 */
export function datagramKey(secret: string): Buffer {
  return createHash('sha256').update('outpost-udp\0').update(secret).digest();
}

/** Constant-time comparison of two hex digests. */
export function hexEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'hex');
  const bb = Buffer.from(b, 'hex');
  return ba.length === bb.length && ba.length > 0 && ba.length * 2 === a.length && bb.length * 2 === b.length && timingSafeEqual(ba, bb);
}

/** A credential as sent in `Authorization: Bearer <id>.<secret>`. */
export interface Credential {
  id: string;
  secret: string;
}

export function formatCredential(c: Credential): string {
  return `${c.id}.${c.secret}`;
}

/** Splits `<id>.<secret>`; undefined when the shape is wrong. */
export function parseCredential(token: string): Credential | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0 || dot === token.length - 1 || token.length > 512) return undefined;
  return { id: token.slice(0, dot), secret: token.slice(dot + 1) };
}
