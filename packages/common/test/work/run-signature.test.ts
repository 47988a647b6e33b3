import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cancelBody, exportWorkKey, parseWorkKey, runBody, runDigest, signWork, verifyWork } from '../../src/work/run-signature.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const run = { run: 'run_1', job: 'deploy', steps: [{ name: 'a', task: { kind: 'command', program: 'echo', args: ['hi'], timeoutMs: 1000 } }], expiresAt: 1_000, nonce: 'n1' };

describe('run signatures', () => {
  it('verifies what the core signed, and nothing altered', () => {
    const body = runBody(run)!;
    const sig = signWork(privateKey, body);
    expect(verifyWork(publicKey, body, sig)).toBe(true);
    // Key order does not matter; content does.
    expect(verifyWork(publicKey, runBody({ nonce: 'n1', expiresAt: 1_000, steps: run.steps, job: 'deploy', run: 'run_1' })!, sig)).toBe(true);
    for (const altered of [{ ...run, job: 'other' }, { ...run, expiresAt: 2_000 }, { ...run, nonce: 'n2' }, { ...run, run: 'run_2' }, { ...run, steps: [{ ...run.steps[0]!, task: { ...run.steps[0]!.task, program: 'touch' } }] }]) {
      expect(verifyWork(publicKey, runBody(altered)!, sig)).toBe(false);
    }
    expect(runDigest(body)).toMatch(/^[0-9a-f]{64}$/);
    const other = generateKeyPairSync('ed25519');
    expect(verifyWork(other.publicKey, body, sig)).toBe(false);
    expect(verifyWork(publicKey, cancelBody('run_1'), signWork(privateKey, cancelBody('run_1')))).toBe(true);
    expect(verifyWork(publicKey, cancelBody('run_2'), signWork(privateKey, cancelBody('run_1')))).toBe(false);
  });

  it('refuses garbled signatures and keys without throwing (fuzzed)', () => {
    const body = runBody(run)!;
    const sig = signWork(privateKey, body);
    for (let i = 0; i < 300; i++) {
      const b = Buffer.from(sig, 'base64');
      b[i % b.length]! ^= 1 + (i % 255);
      expect(verifyWork(publicKey, body, b.toString('base64'))).toBe(false);
      expect(verifyWork(publicKey, body, randomBytes(i % 100).toString('base64'))).toBe(false);
      expect(parseWorkKey(randomBytes(i % 80).toString('base64'))).toBeUndefined();
    }
    for (const junk of [undefined, null, 1, {}, '', 'x'.repeat(10_000), sig.slice(1)]) expect(verifyWork(publicKey, body, junk)).toBe(false);
    expect(runBody({ ...run, steps: [Number.NaN] })).toBeUndefined();
  });

  it('parses the pinned key as SPKI DER base64 or PEM, Ed25519 only', () => {
    const b64 = exportWorkKey(publicKey);
    expect(parseWorkKey(b64)?.asymmetricKeyType).toBe('ed25519');
    expect(parseWorkKey(publicKey.export({ format: 'pem', type: 'spki' }).toString())?.asymmetricKeyType).toBe('ed25519');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(parseWorkKey(exportWorkKey(ec.publicKey))).toBeUndefined();
    for (const junk of [undefined, 42, '', '-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----']) expect(parseWorkKey(junk)).toBeUndefined();
  });
});
