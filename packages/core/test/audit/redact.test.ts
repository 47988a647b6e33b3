import { describe, expect, it } from 'vitest';
import { recordable, recordableBody, redact, REDACTED } from '../../src/audit/redact.js';

describe('audit redaction', () => {
  it('replaces the value of every secret-looking key at any depth, keeping the rest', () => {
    const out = redact({
      name: 'alice',
      password: 'hunter2-hunter2',
      nested: { apiToken: 'at_1.s3cret', list: [{ privateKey: 'PEM', ok: 1 }], Authorization: 'Bearer x', sessionCookie: 'c' },
      certPem: '-----BEGIN',
      csr: 'x',
      clientSecret: 'y',
      roles: ['viewer'],
    });
    expect(out).toEqual({
      name: 'alice',
      password: REDACTED,
      nested: { apiToken: REDACTED, list: [{ privateKey: REDACTED, ok: 1 }], Authorization: REDACTED, sessionCookie: REDACTED },
      certPem: REDACTED,
      csr: REDACTED,
      clientSecret: REDACTED,
      roles: ['viewer'],
    });
  });

  it('turns Sets, Maps and Dates into JSON and drops undefined and functions', () => {
    expect(redact({ s: new Set(['a']), m: new Map([['k', 1]]), d: new Date(0), u: undefined, f: () => 1, n: Number.NaN })).toEqual({
      s: ['a'],
      m: { k: 1 },
      d: '1970-01-01T00:00:00.000Z',
      n: null,
    });
  });

  it('bounds a field to maxBytes with a truncation marker', () => {
    const big = { notes: 'x'.repeat(50_000) };
    const out = recordable(big, 1024) as Record<string, unknown>;
    expect(out['[truncated]']).toBe(JSON.stringify(big).length);
    expect(JSON.stringify(out).length).toBeLessThanOrEqual(1024);
    expect(recordable({ a: 1 }, 1024)).toEqual({ a: 1 });
  });

  it('records a body that is not JSON only by its size (it could hold anything)', () => {
    expect(recordableBody('password=hunter2', 1024)).toBe('[not JSON: 16 bytes]');
    expect(recordableBody('{"name":"a","password":"p"}', 1024)).toEqual({ name: 'a', password: REDACTED });
    expect(recordableBody('', 1024)).toBeUndefined();
  });
});
