import { describe, expect, it } from 'vitest';
import { datagramKey, formatCredential, hashSecret, hexEqual, newId, newSecret, parseCredential } from '@outpost/common';

describe('newSecret and newId', () => {
  it('makes 32 random bytes as base64url by default', () => {
    const a = newSecret();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(newSecret()).not.toBe(a);
    expect(Buffer.from(newSecret(16), 'base64url')).toHaveLength(16);
  });

  it('makes ids with the kind prefix and 12 random bytes', () => {
    const id = newId('ag');
    expect(id).toMatch(/^ag_[A-Za-z0-9_-]{16}$/);
    expect(newId('ag')).not.toBe(id);
  });
});

describe('hashSecret and datagramKey', () => {
  it('hashes a secret to a stable 64-digit hex string', () => {
    expect(hashSecret('s3cret')).toMatch(/^[0-9a-f]{64}$/);
    expect(hashSecret('s3cret')).toBe(hashSecret('s3cret'));
    expect(hashSecret('s3cret')).not.toBe(hashSecret('s3creu'));
  });

  it('derives a 32-byte datagram key unrelated to the stored hash', () => {
    const key = datagramKey('s3cret');
    expect(key).toHaveLength(32);
    expect(key.equals(datagramKey('s3cret'))).toBe(true);
    expect(key.toString('hex')).not.toBe(hashSecret('s3cret'));
  });
});

describe('hexEqual', () => {
  it('is true for equal digests and false for different ones', () => {
    const h = hashSecret('a');
    expect(hexEqual(h, hashSecret('a'))).toBe(true);
    expect(hexEqual(h, hashSecret('b'))).toBe(false);
    expect(hexEqual(h, h.slice(0, 62))).toBe(false);
    expect(hexEqual(h, `${h}00`)).toBe(false);
  });

  it('is false for two empty strings', () => {
    expect(hexEqual('', '')).toBe(false);
  });

  it.each([
    ['abc', 'abd'],
    ['abzz', 'abyy'],
    ['00', '00zz'],
    ['zz', 'zz'],
    ['0g', '0g'],
  ])('is false when either side is not well-formed hex (%j vs %j)', (a, b) => {
    expect(hexEqual(a, b)).toBe(false);
  });
});

describe('formatCredential and parseCredential', () => {
  it('round-trips <id>.<secret>', () => {
    const c = { id: newId('ag'), secret: newSecret() };
    expect(formatCredential(c)).toBe(`${c.id}.${c.secret}`);
    expect(parseCredential(formatCredential(c))).toEqual(c);
  });

  it('splits at the first dot, so the secret may contain dots', () => {
    expect(parseCredential('ag_1.sec.ret')).toEqual({ id: 'ag_1', secret: 'sec.ret' });
  });

  it.each(['', '.', 'nodot', '.secret', 'id.', '..'])('rejects the malformed token %j', (token) => {
    expect(parseCredential(token)).toBeUndefined();
  });

  it('accepts a token of 512 characters and rejects one of 513', () => {
    expect(parseCredential(`a.${'s'.repeat(510)}`)).toEqual({ id: 'a', secret: 's'.repeat(510) });
    expect(parseCredential(`a.${'s'.repeat(511)}`)).toBeUndefined();
  });
});
