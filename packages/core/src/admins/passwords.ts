import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { OutpostError } from '@outpost/common';
import { AdminErrors } from './errors.js';

/*
 * Stored form: `scrypt$<log2 N>$<r>$<p>$<salt b64url>$<key b64url>`. N = 2^15, r = 8,
 * p = 1: a quarter of OWASP's interactive floor (2^17); bench/scrypt.mjs measured 164 ms
 * a sign-in against 670 ms for 2^17 on a 2-core box (0.24x), and the lockout and the
 * per-address limit bound online guessing. The parameters travel with the hash, so they
 * can be raised later without invalidating stored passwords.
 */
const LOG_N = 15;
const R = 8;
const P = 1;
const KEY_LEN = 32;

function scrypt(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  const opts: ScryptOptions = { N: 2 ** logN, r, p, maxmem: 256 * 2 ** logN * r };
  return new Promise((resolve, reject) => scryptCb(password.normalize('NFKC'), salt, KEY_LEN, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, LOG_N, R, P);
  return ['scrypt', LOG_N, R, P, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [logN, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![logN, r, p].every(Number.isInteger) || logN < 10 || logN > 20 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const want = Buffer.from(parts[5]!, 'base64url');
  const got = await scrypt(password, Buffer.from(parts[4]!, 'base64url'), logN, r, p);
  return want.length === got.length && timingSafeEqual(want, got);
}

/** A stored hash to verify against when the name is unknown, so a miss costs as long as a hit. */
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  decoy ??= hashPassword(randomBytes(16).toString('hex'));
  return decoy;
}

/** The few passwords every guessing list starts with; the length rule catches most others. */
const COMMON = new Set([
  'password1234', 'password12345', 'password123456', '123456789012', '1234567890123', 'qwertyuiop12', 'qwertyuiopas',
  'administrator', 'administrator1', 'letmein12345', 'welcome12345', 'changeme1234', 'iloveyou1234', 'passw0rd1234',
  'p@ssw0rd1234', 'outpost12345', 'outpostoutpost', 'aaaaaaaaaaaa', 'abcdefghijkl', 'abc123abc123', 'trustno1trustno1',
]);

/** Refuses a weak password with `CORE_PASSWORD_WEAK` and says which rule it broke. */
export function checkPasswordStrength(password: string, name: string, minLength: number): void {
  const weak = (why: string): never => {
    throw new OutpostError(AdminErrors.PASSWORD_WEAK, `the password is too weak: ${why}`, { status: 400, details: { rule: why } });
  };
  if ([...password].length < minLength) weak(`it must have at least ${minLength} characters`);
  if (password.length > 1024) weak('it must have at most 1024 characters');
  if (COMMON.has(password.toLowerCase())) weak('it is on the list of common passwords');
  if (new Set(password).size < 5) weak('it must use at least 5 different characters');
  if (password.toLowerCase().includes(name.toLowerCase())) weak('it must not contain the administrator name');
}
